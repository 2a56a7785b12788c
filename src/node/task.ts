/** Task states: the seed's three (`busy`, `complete`, `failed`) plus the ones a queue and a printer need. */
export const STATUSES = ['queued', 'busy', 'paused', 'complete', 'failed', 'cancelled'] as const
export type Status = typeof STATUSES[number]
export const FINAL: ReadonlySet<Status> = new Set(['complete', 'failed', 'cancelled'])

/**
 * A file of a task: where it is kept (`path`, under the data folder), the path the tool sees it
 * at in its folder when the client named it (`name`), its digest and, for an input, its prearg.
 */
export interface TaskInput { path: string; prearg?: string; name?: string; sha256?: string }

/** A task as stored and shown; field names follow the seed (`client cmd ctime etime in out ...`). */
export interface Task {
  id: string
  service: string
  status: Status
  client: string
  server: string
  cmd: string
  ctime: number
  etime?: number
  in: TaskInput[]
  /** the other files of the task's folder (includes, imports), each under its name */
  files?: TaskInput[]
  out?: string
  notifier?: string
  pid?: number
  exitCode?: number | null
  error?: string
  progress?: string
  /** printer tasks: which printer, and how far the print is */
  printer?: string
  percent?: number
  linesSent?: number
  bytesSent?: number
  totalBytes?: number
  temperatures?: string
  /** the key of its result in the node's result cache (tasks of tools that cache) */
  key?: string
  /** completed from the result cache: the task whose result it is */
  cached?: string
  /** the output's digest and size once it is in the node's content store (GET /api/v1/blobs/SHA) */
  outSha256?: string
  outSize?: number
}

/** Seed-style ids: `<epoch seconds>-<6 digits>`, e.g. 1361982308-837500. */
export function newTaskId (now = Date.now()): string {
  return `${Math.floor(now / 1000)}-${String(Math.floor(Math.random() * 1e6)).padStart(6, '0')}`
}

export const TASK_ID = /^\d{1,12}-\d{6}$/
