import { z } from 'zod'
import { TaskError } from './errors.js'

/** A SHA-256 as the node names blobs: 64 lower-case hex digits. */
export const SHA256 = /^[0-9a-f]{64}$/

const MAX_PATH = 1024
const MAX_SEGMENT = 255
const MAX_DEPTH = 32
/** files of one task sent by digest (each becomes a link and a read-only mount) */
export const MAX_FILES = 1000
/** digests asked about in one `blobs/missing` request */
export const MAX_DIGESTS = 10_000

/**
 * Why a path from a request cannot name a file of a task folder, or undefined when it can: it
 * must be relative, with `/` between segments, none empty, `.` or `..`, no backslash, no control
 * character, at most 1024 bytes, 32 levels and 255 bytes a segment.
 */
export function pathProblem (p: string): string | undefined {
  if (p === '') return 'is empty'
  if (Buffer.byteLength(p) > MAX_PATH) return `is over ${MAX_PATH} bytes`
  // C0 and C1 controls, NUL among them
  if (/[\u0000-\u001f\u007f-\u009f]/.test(p)) return 'holds a control character'
  if (p.includes('\\')) return 'holds a backslash: separate folders with /'
  if (p.startsWith('/')) return 'is absolute: give a path relative to the task folder'
  const segments = p.split('/')
  if (segments.length > MAX_DEPTH) return `is over ${MAX_DEPTH} levels deep`
  for (const s of segments) {
    if (s === '') return 'has an empty segment (// or a trailing /)'
    if (s === '.' || s === '..') return `has a "${s}" segment`
    if (Buffer.byteLength(s) > MAX_SEGMENT) return `has a segment over ${MAX_SEGMENT} bytes`
  }
  return undefined
}

const refused = (path: string, why: string) => new TaskError('invalid', `path ${JSON.stringify(path)} ${why}`, { path })

/**
 * Checks the names of a task folder together: each valid, none twice, none a folder of another
 * (`lib` beside `lib/x.scad`), none one of `reserved` (the task's output). Throws a refusal
 * naming the first bad path.
 */
export function checkTree (names: string[], reserved: string[] = []): void {
  const files = new Set<string>()
  const folders = new Set<string>()
  for (const n of names) {
    const why = pathProblem(n)
    if (why) throw refused(n, why)
    if (files.has(n)) throw refused(n, 'is given twice')
    if (folders.has(n)) throw refused(n, 'is a folder of another file of the task')
    if (reserved.includes(n)) throw refused(n, 'is the name of the task\'s output')
    const segments = n.split('/')
    for (let i = 1; i < segments.length; i++) {
      const folder = segments.slice(0, i).join('/')
      if (files.has(folder) || reserved.includes(folder)) throw refused(n, `puts a folder where ${JSON.stringify(folder)} is a file`)
      folders.add(folder)
    }
    files.add(n)
  }
}

const digest = z.string().regex(SHA256, 'a SHA-256: 64 lower-case hex digits')
/** a blob's size, when the client knows it (lets cache/lookup say how many bytes are missing) */
const size = z.number().int().nonnegative().optional()

/** A task whose files are in the node's content store, named by digest (`POST /api/v1/tasks` as JSON, `POST /api/v1/cache/lookup`). */
export const treeTaskSchema = z.object({
  service: z.string().min(1),
  inputs: z.array(z.object({ sha256: digest, path: z.string().optional(), prearg: z.string().optional(), size }).strict()).min(1).max(MAX_FILES),
  files: z.array(z.object({ sha256: digest, path: z.string(), size }).strict()).max(MAX_FILES).default([]),
  cache: z.boolean().optional(),
  notifier: z.string().optional(),
  printer: z.string().optional(),
  format: z.string().optional(),
  token: z.string().optional(),
}).strict()
export type TreeTask = z.infer<typeof treeTaskSchema>

export const missingSchema = z.object({ sha256: z.array(digest).max(MAX_DIGESTS) }).strict()

/** The first problem of a body that does not fit a schema, as `field: message`. */
export function zodProblem (e: z.ZodError): string {
  const issue = e.issues[0]
  return `${issue.path.join('.') || 'body'}: ${issue.message}`
}
