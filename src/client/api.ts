import { renameSync, rmSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { debugLog } from './log.js'
import type { Server } from './address.js'
import { ClientError, EXIT } from './errors.js'
import { intoFile } from './files.js'
import type { FormFile, StreamingForm } from './form.js'
import { fetchText, openStream, postForm, putFile, RequestError, type OnProgress, type Progress, type Reply } from './http.js'
import { isSpecial } from './output.js'
import { VERSION } from '../version.js'

const log = debugLog('rrcloud:client')

/** A task as the node shows it (the seed's fields, `in` as a comma-separated list). */
export interface TaskView {
  id: string
  service: string
  status: 'queued' | 'busy' | 'paused' | 'complete' | 'failed' | 'cancelled'
  client: string
  server: string
  cmd: string
  ctime: number
  etime?: number
  in: string
  out?: string
  notifier?: string
  pid?: number
  exitCode?: number | null
  error?: string
  progress?: string
  /** completed from the node's result cache: the task that made the result */
  cached?: string
}

/** A service as the node's /api/v1/services lists it. */
export interface ServiceInfo {
  name: string
  available: boolean
  description: string
  exe?: string
  reason?: string
  argInput: string[]
  inputs: [number, number | null]
  fileOut: string
  output: string
  provides: string[]
}

export const FINAL = new Set(['complete', 'failed', 'cancelled'])

/** Why a node did not do what was asked; `retry` says another node may well do it. */
export class NodeError extends ClientError {
  /** the node's answer as JSON, when it was JSON */
  details?: Record<string, unknown>
  constructor (message: string, readonly server: Server, readonly status: number | undefined, readonly retry: boolean, exit: number = EXIT.node) {
    super(message, exit)
  }
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE', 'EADDRNOTAVAIL'])

/** Turns a failed request into a message that says what to do. */
export function explain (server: Server, err: unknown, status?: number, body?: string): NodeError {
  if (status === undefined) {
    const code = (err as RequestError)?.code ?? ''
    const why = code === 'ECONNREFUSED' ? 'connection refused' : code === 'ENOTFOUND' ? 'no such host'
      // our own timeouts say how long was waited for what
      : code === 'ETIMEDOUT' && err instanceof RequestError ? err.message.replace(/ \(ETIMEDOUT\)$/, '')
      : code || (err as Error)?.message
    return new NodeError(`cannot reach a node at ${server.url} (${why}): start one there with \`rrcloud node\`, ` +
      'name another with --s=HOST[:PORT] or in rrcloudrc, or run the tool here with --local', server, undefined, UNREACHABLE.has(code) || code === 'ERR_REQUEST')
  }
  let message = body?.trim() ?? ''
  let details: Record<string, unknown> | undefined
  try {
    details = JSON.parse(message)
    message = (details?.error as string | undefined) ?? message
  } catch {}
  const e = explainStatus(server, status, message)
  if (details && typeof details === 'object') e.details = details
  return e
}

function explainStatus (server: Server, status: number, message: string): NodeError {
  if (status === 401) {
    return new NodeError(`${server.url} needs a token: pass --token=TOKEN, set RRCLOUD_TOKEN or add "token = ..." to rrcloudrc`, server, status, false)
  }
  if (status >= 500) return new NodeError(`${server.url} failed (${status}): ${message || 'no reason given'}`, server, status, true)
  return new NodeError(`${server.url}: ${message || `HTTP ${status}`}`, server, status, false, status === 404 || status === 409 ? EXIT.failed : EXIT.usage)
}

export type { OnProgress, Progress }

/** The JSON API of one node. */
export interface NodeApi {
  server: Server
  submit (form: StreamingForm, onProgress?: OnProgress): Promise<TaskView>
  task (id: string): Promise<TaskView>
  /**
   * The task once it ends or after `seconds` (GET ?wait=, a long poll); `waited` is false when the
   * node answered without waiting (a node that does not know ?wait=): poll then.
   */
  waitTask (id: string, seconds: number): Promise<{ task: TaskView; waited: boolean }>
  tasks (): Promise<TaskView[]>
  meta (): Promise<Record<string, unknown>>
  services (): Promise<ServiceInfo[]>
  log (id: string): Promise<string>
  change (id: string, op: 'cancel' | 'pause' | 'resume'): Promise<TaskView>
  /** M112 to a printer of the node, by name or port path */
  estop (printer: string): Promise<Record<string, unknown>>
  /** whether the node holds the result of this task, and which of its files it lacks */
  lookup (body: TreeBody, timeoutMs?: number): Promise<Holding>
  /** the digests of `sha256` the node does not hold */
  missing (sha256: string[]): Promise<string[]>
  /** uploads one file into the node's store */
  putBlob (sha256: string, file: FormFile, onProgress?: OnProgress): Promise<void>
  /** a task whose files the node holds (409 with `missing` when it lacks some) */
  submitTree (body: TreeBody): Promise<TaskView>
  /** streams the output to a temporary file beside dest, renamed to dest once complete (or to a stream); `path`: another output than the task's */
  download (id: string, dest: string | NodeJS.WritableStream, onProgress?: OnProgress, path?: string): Promise<void>
  /** a pipeline whose stages' files the node holds (409 with `missing` when it lacks some) */
  createPipeline (body: PipelineBody): Promise<PipelineView>
  /** the pipeline once it ends or after `seconds` (a long poll; 0: now) */
  pipeline (id: string, seconds?: number): Promise<PipelineView>
  cancelPipeline (id: string): Promise<PipelineView>
  /** every stage's log, each headed by its stage */
  pipelineLog (id: string): Promise<string>
  /** a stage's output (n from 1), written as `download` writes a task's */
  downloadStage (id: string, n: number, dest: string | NodeJS.WritableStream, onProgress?: OnProgress): Promise<void>
}

/** A stage of a pipeline as sent: a task by digest whose inputs may include the previous stage's output. */
export interface PipelineStageBody {
  service: string
  inputs: Array<{ sha256: string; path?: string; prearg?: string; size?: number } | { from: 'previous'; path?: string; prearg?: string }>
  files: Array<{ sha256: string; path: string; size?: number }>
  printer?: string
}
export interface PipelineBody { stages: PipelineStageBody[]; cache?: false; notifier?: string }

/** A stage as the driving node shows it. */
export interface StageView {
  n: number
  service: string
  state: 'waiting' | 'placing' | 'queued' | 'busy' | 'paused' | 'complete' | 'failed' | 'cancelled'
  node?: string
  nodeUrl?: string
  task?: string
  printer?: string
  percent?: number
  progress?: string
  exitCode?: number | null
  error?: string
  out?: string
  outSha256?: string
  outSize?: number
  attempts?: number
}

/** A pipeline as the driving node shows it. */
export interface PipelineView {
  id: string
  status: 'running' | 'complete' | 'failed' | 'cancelled'
  client: string
  ctime: number
  etime?: number
  /** index of the running stage */
  stage: number
  stages: StageView[]
  error?: string
  exitCode?: number | null
  failedLog?: string
  cancelling?: boolean
}

/** A file of a task's tree, by digest: a main input (with its prearg) or another file the tool reads. */
export interface BlobRef { sha256: string; path: string; prearg?: string }

/** A task whose files are in the node's store (POST /api/v1/tasks as JSON; also /cache/lookup). */
export interface TreeBody {
  service: string
  inputs: BlobRef[]
  files: BlobRef[]
  cache?: false
  notifier?: string
  printer?: string
}

/** What a node holds of a task: its result (`hit`), and which of its files it lacks. */
export interface Holding { hit: boolean; key?: string; missing: string[] }

/** How long a node may take to answer a call without a body to send (a long poll adds its wait). */
const CALL_MS = 30000

export function nodeApi (server: Server, token?: string): NodeApi {
  const base = `${server.url}/api/v1/`
  const headers: Record<string, string> = { accept: 'application/json', 'user-agent': `rrcloud/${VERSION}`, ...(token ? { authorization: `Bearer ${token}` } : {}) }
  const connectTimeoutMs = 5000
  const parse = <T>(res: Reply): T => {
    if (res.statusCode >= 300) throw explain(server, undefined, res.statusCode, res.body)
    return (res.headers['content-type'] ?? '').includes('json') ? JSON.parse(res.body) : res.body as T
  }
  /** The node's answer, or why it could not be had */
  async function exchange (reply: Promise<Reply>): Promise<Reply> {
    try {
      return await reply
    } catch (err) {
      throw explain(server, err)
    }
  }
  async function call<T> (path: string, method: 'GET' | 'POST' = 'GET', timeoutMs = CALL_MS, json?: unknown): Promise<T> {
    log('%s %s%s', method, base, path)
    const body = json === undefined ? undefined : JSON.stringify(json)
    const h = body === undefined ? headers : { ...headers, 'content-type': 'application/json' }
    return parse<T>(await exchange(fetchText(base + path, { method, headers: h, connectTimeoutMs, timeoutMs, body })))
  }
  const task = (id: string) => `tasks/${encodeURIComponent(id)}`
  const pipelinePath = (id: string) => `pipelines/${encodeURIComponent(id)}`
  const api: NodeApi = {
    server,
    async submit (form, onProgress) {
      log('POST %stasks', base)
      return parse(await exchange(postForm(`${base}tasks`, form, { headers, connectTimeoutMs }, onProgress)))
    },
    task: (id) => call(task(id)),
    async waitTask (id, seconds) {
      log('GET %s%s?wait=%d', base, task(id), seconds)
      const res = await exchange(fetchText(`${base}${task(id)}?wait=${seconds}`, { headers, connectTimeoutMs, timeoutMs: CALL_MS + seconds * 1000 }))
      return { task: parse<TaskView>(res), waited: res.headers['x-rrcloud-max-wait'] !== undefined }
    },
    tasks: () => call('tasks'),
    meta: () => call('meta'),
    services: () => call('services'),
    log: (id) => call(`${task(id)}/log`),
    change: (id, op) => call(`${task(id)}/${op}`, 'POST'),
    estop: (printer) => call(`printers/${encodeURIComponent(printer)}/estop`, 'POST', 5000),
    lookup: (body, timeoutMs = 2000) => call<Holding>('cache/lookup', 'POST', timeoutMs, body),
    missing: async (sha256) => (await call<{ missing: string[] }>('blobs/missing', 'POST', CALL_MS, { sha256 })).missing,
    async putBlob (sha256, file, onProgress) {
      log('PUT %sblobs/%s', base, sha256)
      parse(await exchange(putFile(`${base}blobs/${sha256}`, file, { headers, connectTimeoutMs }, onProgress)))
    },
    submitTree: (body) => call<TaskView>('tasks', 'POST', CALL_MS, body),
    async download (id, dest, onProgress, path = `${task(id)}/output`) {
      log('GET %s%s', base, path)
      const failed = (err: unknown, status?: number) => explain(server, err, status, `cannot get the output of ${path.startsWith('tasks/') ? 'task' : 'pipeline'} ${id}`)
      let res
      try {
        res = await openStream(`${base}${path}`, { headers, connectTimeoutMs })
      } catch (err) {
        throw failed(err)
      }
      if ((res.statusCode ?? 0) >= 300) {
        res.resume()
        throw failed(undefined, res.statusCode)
      }
      // the connection failing mid-way is the node's failure; anything else is writing here
      let netErr: Error | undefined
      res.once('error', (e) => { netErr = e })
      res.once('aborted', () => { netErr ??= new RequestError('the node closed the connection', 'ECONNRESET') })
      if (onProgress) {
        const length = Number(res.headers['content-length'])
        const total = Number.isFinite(length) ? length : undefined
        let transferred = 0
        onProgress({ transferred, total, percent: 0 })
        res.on('data', (chunk: Buffer) => {
          transferred += chunk.length
          onProgress({ transferred, total, percent: total ? transferred / total : 0 })
        })
        // the last chunk already said 100 % when the length was known
        if (total === undefined) res.once('end', () => onProgress({ transferred, total: transferred, percent: 1 }))
      }
      if (typeof dest !== 'string' || isSpecial(dest)) {
        try {
          return typeof dest === 'string' ? await intoFile(res, dest) : await pipeline(res, dest, { end: false })
        } catch (err) {
          throw failed(netErr ?? err)
        }
      }
      const part = join(dirname(dest), `.${basename(dest)}.${process.pid}.part`)
      try {
        await intoFile(res, part)
        if (!res.complete) throw netErr ?? new RequestError('the node closed the connection', 'ECONNRESET')
        renameSync(part, dest)
      } catch (err) {
        rmSync(part, { force: true })
        const e = err as NodeJS.ErrnoException
        // a stream that ended early without a file system call failing is the connection's failure
        if (netErr || err instanceof RequestError || (!res.complete && !e.syscall)) throw failed(netErr ?? err)
        throw new ClientError(`cannot write ${dest}: ${e.code ?? e.message}; choose another place with -o FILE`, EXIT.usage)
      }
    },
    createPipeline: (body) => call<PipelineView>('pipelines', 'POST', CALL_MS, body),
    async pipeline (id, seconds = 0) {
      log('GET %s%s?wait=%d', base, pipelinePath(id), seconds)
      return parse<PipelineView>(await exchange(fetchText(`${base}${pipelinePath(id)}${seconds ? `?wait=${seconds}` : ''}`, { headers, connectTimeoutMs, timeoutMs: CALL_MS + seconds * 1000 })))
    },
    cancelPipeline: (id) => call(`${pipelinePath(id)}/cancel`, 'POST'),
    pipelineLog: (id) => call(`${pipelinePath(id)}/log`),
    downloadStage: (id, n, dest, onProgress) => api.download(id, dest, onProgress, `${pipelinePath(id)}/stages/${n}/output`),
  }
  return api
}
