import { createHash } from 'node:crypto'
import { mkdirSync, renameSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { BlobStore } from './blobs.js'
import { writeSmallFile } from './new-file.js'
import { TaskError } from './errors.js'
import type { TaskInput } from './task.js'
import type { IncomingInput, Submission } from './tasks.js'
import { checkTree } from './tree.js'

/** An input without a path is named after its task: `ID-N.ext`. */
export const autoName = (id: string, i: { ext: string }, n: number) => `${id}-${n}${i.ext ? `.${i.ext}` : ''}`
/** The digest of each input, where known: uploads were hashed as they came, content sent as a string is hashed now. */
export const digestsOf = (sub: Submission) =>
  sub.inputs.map((i) => i.sha256 ?? (i.content !== undefined ? createHash('sha256').update(i.content).digest('hex') : undefined))

/** The files of a task being accepted: their names in the tool's folder and where the node keeps them. */
export interface TaskFolder {
  /** each input's name in the tool's folder */
  names: string[]
  /** where each input is kept */
  paths: string[]
  /** each input's digest (content sent as a string is hashed here) */
  shas: Array<string | undefined>
  /** checks the names against the task's output, then links files from the store, moves uploads in and writes content */
  fill (output?: string): Promise<void>
  /** the task's records of its inputs and other files, with paths relative to `dataDir` */
  records (dataDir: string): { inputs: TaskInput[], files: TaskInput[] }
  /** takes what came with the request into the store, once the task is accepted */
  keep (log: (line: string) => void): void
  /** removes every file of the task */
  remove (): Promise<void>
}

/**
 * Lays out a task's files under `inDir`: as `ID-N.ext` beside other tasks' (the seed's layout),
 * or, when the client gave paths or other files, in a folder `ID/` laid out as the tool sees it.
 */
export function taskFolder (inDir: string, id: string, sub: Submission, blobs: BlobStore): TaskFolder {
  const files = sub.files ?? []
  const tree = files.length > 0 || sub.inputs.some((i) => i.name)
  const names = sub.inputs.map((i, n) => i.name ?? autoName(id, i, n))
  const at = (name: string) => tree ? join(inDir, id, name) : join(inDir, name)
  const paths = names.map(at)
  const filePaths = files.map((f) => at(f.name))
  const shas = digestsOf(sub)
  const relative = (dataDir: string, p: string) => p.slice(dataDir.length + 1)
  return {
    names,
    paths,
    shas,
    async fill (output) {
      if (tree) checkTree([...names, ...files.map((f) => f.name)], output ? [output] : [])
      for (const p of tree ? [...paths, ...filePaths] : []) mkdirSync(dirname(p), { recursive: true })
      // files named by digest come from the store, checked and linked in one go: none can go meanwhile
      const stored = [...sub.inputs.map((i, n) => ({ i, path: paths[n] })), ...files.map((f, n) => ({ i: f as IncomingInput, path: filePaths[n] }))]
        .filter(({ i }) => !i.tmpPath && i.content === undefined)
      const missing = blobs.missing(stored.map(({ i }) => i.sha256!))
      for (const { i, path } of missing.length ? [] : stored) if (!blobs.linkTo(i.sha256!, path)) missing.push(i.sha256!)
      if (missing.length) {
        throw new TaskError('conflict', `${missing.length} file(s) of this task are not on this node: upload them (PUT /api/v1/blobs/SHA256) and send the task again`, { missing })
      }
      // uploads are moved in here (a rename makes no new file: a thread-pool trip would cost more);
      // content sent as a string becomes a new file
      sub.inputs.forEach((i, n) => { if (i.tmpPath) renameSync(i.tmpPath, paths[n]) })
      files.forEach((f, n) => { if (f.tmpPath) renameSync(f.tmpPath, filePaths[n]) })
      await Promise.all(sub.inputs.map((i, n) => i.content !== undefined && !i.tmpPath ? writeSmallFile(paths[n], i.content) : undefined))
    },
    records (dataDir) {
      return {
        inputs: sub.inputs.map((i, n) => ({
          path: relative(dataDir, paths[n]), ...(i.prearg ? { prearg: i.prearg } : {}), ...(i.name ? { name: i.name } : {}), ...(shas[n] ? { sha256: shas[n] } : {}),
        })),
        files: files.map((f, n) => ({ path: relative(dataDir, filePaths[n]), name: f.name, sha256: f.sha256 })),
      }
    },
    keep (log) {
      const came = [
        ...sub.inputs.map((i, n) => ({ path: paths[n], sha: shas[n], size: i.size ?? (i.content !== undefined ? Buffer.byteLength(i.content) : undefined), came: i.tmpPath || i.content !== undefined })),
        ...files.map((f, n) => ({ path: filePaths[n], sha: f.sha256, size: f.size, came: Boolean(f.tmpPath) })),
      ]
      for (const c of came) {
        if (!c.came || !c.sha || c.size === undefined) continue
        try { blobs.add(c.path, c.sha, c.size) } catch (e) { log(`store: could not keep an input of task ${id}: ${(e as Error).message}`) }
      }
    },
    async remove () {
      await Promise.all(paths.map((p) => rm(p, { force: true })))
      await rm(join(inDir, id), { recursive: true, force: true })
    },
  }
}
