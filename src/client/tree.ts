import { statSync } from 'node:fs'
import { pieces } from './files.js'
import type { BlobRef, TreeBody } from './api.js'

/** A file of a task as it travels: where it is here, where it goes in the task's folder, its size. */
export interface SizedFile { path: string; rel: string; size: number }

/** ... and what it is. */
export interface TreeFile extends SizedFile { sha256: string }

/**
 * A task's files: the main inputs (in argv order, with their preargs) and the other files the tool
 * reads (a model's includes, libraries, imported data). Hashed only when a node is to be asked by
 * digest: a small task sent as a form to one node needs none.
 */
export interface FileTree<F extends SizedFile = SizedFile> {
  inputs: Array<F & { prearg?: string }>
  files: F[]
  /** all the bytes of the tree */
  bytes: number
}

/** A task's files, each by digest. */
export type TaskTree = FileTree<TreeFile>

/** One file up to this size goes as one multipart form, as the seed sent it; a larger one, or a model of several files, goes into the node's store file by file. */
export const SMALL_INPUTS = 1 << 20

/** SHA-256 of a file, read in 1 MiB pieces. node:crypto is loaded only when there is something to hash. */
export async function sha256Of (path: string): Promise<string> {
  const { createHash } = await import('node:crypto')
  const h = createHash('sha256')
  for (const chunk of pieces(path)) {
    h.update(chunk)
    // a large file: Ctrl-C and the progress line are heard between its pieces
    await new Promise((resolve) => setImmediate(resolve))
  }
  return h.digest('hex')
}

/** Runs `fn` over `items`, at most `n` at a time, keeping their order. */
export async function mapLimit<T, R> (items: T[], n: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async () => { while (next < items.length) { const i = next++; out[i] = await fn(items[i]) } }
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker))
  return out
}

/** The files of a project with their sizes. */
export function sizeTree (mains: Array<{ path: string; rel: string; prearg?: string }>, files: Array<{ path: string; rel: string }>): FileTree {
  const sized = <F extends { path: string; rel: string }>(f: F) => ({ ...f, size: statSync(f.path).size })
  const inputs = mains.map(sized)
  const rest = files.map(sized)
  return { inputs, files: rest, bytes: [...inputs, ...rest].reduce((n, f) => n + f.size, 0) }
}

const hashed = (t: FileTree): t is TaskTree => [...t.inputs, ...t.files].every((f) => 'sha256' in f)
const hashing = new WeakMap<FileTree, Promise<TaskTree>>()

/** The digests of a tree's files (hashed four at a time, once per tree however often asked). */
export function digestsOf (t: FileTree): Promise<TaskTree> {
  if (hashed(t)) return Promise.resolve(t)
  let p = hashing.get(t)
  if (!p) {
    const one = async <F extends SizedFile>(f: F) => ({ ...f, sha256: await sha256Of(f.path) })
    p = Promise.all([mapLimit(t.inputs, 4, one), mapLimit(t.files, 4, one)]).then(([inputs, files]) => ({ inputs, files, bytes: t.bytes }))
    hashing.set(t, p)
  }
  return p
}

/** Sizes and digests of a project's files. */
export const hashTree = (mains: Array<{ path: string; rel: string; prearg?: string }>, files: Array<{ path: string; rel: string }>): Promise<TaskTree> =>
  digestsOf(sizeTree(mains, files))

/** Whether the task goes as one multipart form rather than through the node's store: small inputs and no other files. */
export const isSmall = (t: FileTree) => t.files.length === 0 && t.bytes <= SMALL_INPUTS

/** The JSON body of a task whose files are in the node's store. */
export function treeBody (t: TaskTree, r: { service: string; notifier?: string; printer?: string; cache?: boolean }): TreeBody {
  const ref = (f: TreeFile & { prearg?: string }): BlobRef => ({ sha256: f.sha256, path: f.rel, ...(f.prearg ? { prearg: f.prearg } : {}) })
  return {
    service: r.service,
    inputs: t.inputs.map(ref),
    files: t.files.map(ref),
    ...(r.cache === false ? { cache: false as const } : {}),
    ...(r.notifier ? { notifier: r.notifier } : {}),
    ...(r.printer ? { printer: r.printer } : {}),
  }
}

/** The files of the tree the node lacks, once each (two files of the same content are one blob). */
export function lacking (t: TaskTree, missing: string[]): TreeFile[] {
  const want = new Set(missing)
  const seen = new Set<string>()
  return [...t.inputs, ...t.files].filter((f) => want.has(f.sha256) && !seen.has(f.sha256) && seen.add(f.sha256))
}

/** Bytes of the tree behind these digests. */
export const bytesOf = (t: TaskTree, missing: string[]) => lacking(t, missing).reduce((n, f) => n + f.size, 0)
