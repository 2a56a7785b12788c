import { createReadStream, statSync } from 'node:fs'
import type { BlobRef, TreeBody } from './api.js'

/** A file of a task as it travels: where it is here, where it goes in the task's folder, what it is. */
export interface TreeFile { path: string; rel: string; size: number; sha256: string }

/**
 * A task's files: the main inputs (in argv order, with their preargs) and the other files the tool
 * reads (a model's includes, libraries, imported data), each by digest.
 */
export interface TaskTree {
  inputs: Array<TreeFile & { prearg?: string }>
  files: TreeFile[]
  /** all the bytes of the tree */
  bytes: number
}

/** One file up to this size goes as one multipart form, as the seed sent it; a larger one, or a model of several files, goes into the node's store file by file. */
export const SMALL_INPUTS = 1 << 20

/** SHA-256 of a file, read in 1 MiB pieces. node:crypto is loaded only when there is something to hash. */
export async function sha256Of (path: string): Promise<string> {
  const { createHash } = await import('node:crypto')
  const h = createHash('sha256')
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer)
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

/** Sizes and digests of a project's files (hashed four at a time). */
export async function hashTree (
  mains: Array<{ path: string; rel: string; prearg?: string }>,
  files: Array<{ path: string; rel: string }>,
): Promise<TaskTree> {
  const one = async <F extends { path: string; rel: string }>(f: F) => ({ ...f, size: statSync(f.path).size, sha256: await sha256Of(f.path) })
  const [inputs, rest] = await Promise.all([mapLimit(mains, 4, one), mapLimit(files, 4, one)])
  return { inputs, files: rest, bytes: [...inputs, ...rest].reduce((n, f) => n + f.size, 0) }
}

/** Whether the task goes as one multipart form rather than through the node's store: small inputs and no other files. */
export const isSmall = (t: TaskTree) => t.files.length === 0 && t.bytes <= SMALL_INPUTS

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
