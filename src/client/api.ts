import got, { type Got, type OptionsInit, type Progress, RequestError } from 'got'
import { createWriteStream, renameSync, rmSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import debug from 'debug'
import type { Server } from './address.js'
import { ClientError, EXIT } from './errors.js'
import type { StreamingForm } from './form.js'
import { isSpecial } from './output.js'
import { VERSION } from '../version.js'

const log = debug('rrcloud:client')

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
  constructor (message: string, readonly server: Server, readonly status: number | undefined, readonly retry: boolean, exit: number = EXIT.node) {
    super(message, exit)
  }
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE', 'EADDRNOTAVAIL'])

/** Turns a failed request into a message that says what to do. */
export function explain (server: Server, err: unknown, status?: number, body?: string): NodeError {
  if (status === undefined) {
    const code = (err as RequestError)?.code ?? ''
    const why = code === 'ECONNREFUSED' ? 'connection refused' : code === 'ENOTFOUND' ? 'no such host' : code || (err as Error)?.message
    return new NodeError(`cannot reach a node at ${server.url} (${why}): start one there with \`rrcloud node\`, ` +
      'name another with --s=HOST[:PORT] or in rrcloudrc, or run the tool here with --local', server, undefined, UNREACHABLE.has(code) || code.startsWith('ERR_GOT_'))
  }
  let message = body?.trim() ?? ''
  try { message = JSON.parse(message).error ?? message } catch {}
  if (status === 401) {
    return new NodeError(`${server.url} needs a token: pass --token=TOKEN, set RRCLOUD_TOKEN or add "token = ..." to rrcloudrc`, server, status, false)
  }
  if (status >= 500) return new NodeError(`${server.url} failed (${status}): ${message || 'no reason given'}`, server, status, true)
  return new NodeError(`${server.url}: ${message || `HTTP ${status}`}`, server, status, false, status === 404 || status === 409 ? EXIT.failed : EXIT.usage)
}

export type OnProgress = (p: Progress) => void

/** The JSON API of one node. */
export interface NodeApi {
  server: Server
  submit (form: StreamingForm, onProgress?: OnProgress): Promise<TaskView>
  task (id: string): Promise<TaskView>
  tasks (): Promise<TaskView[]>
  meta (): Promise<Record<string, unknown>>
  services (): Promise<ServiceInfo[]>
  log (id: string): Promise<string>
  change (id: string, op: 'cancel' | 'pause' | 'resume'): Promise<TaskView>
  /** streams the output to a temporary file beside dest, renamed to dest once complete (or to a stream) */
  download (id: string, dest: string | NodeJS.WritableStream, onProgress?: OnProgress): Promise<void>
}

export function nodeApi (server: Server, token?: string): NodeApi {
  const client: Got = got.extend({
    prefixUrl: `${server.url}/api/v1`,
    headers: { accept: 'application/json', 'user-agent': `rrcloud/${VERSION}`, ...(token ? { authorization: `Bearer ${token}` } : {}) },
    retry: { limit: 0 },
    throwHttpErrors: false,
    timeout: { lookup: 5000, connect: 5000 },
  })
  async function call<T> (path: string, method: 'GET' | 'POST' = 'GET', form?: StreamingForm, onProgress?: OnProgress): Promise<T> {
    log('%s %s/api/v1/%s', method, server.url, path)
    let res
    try {
      // got encodes any FormData-shaped body with form-data-encoder, streaming its files
      const body = form as unknown as OptionsInit['body']
      const req = client(path, { method, body, timeout: form ? undefined : { request: 30000 } })
      if (onProgress) req.on('uploadProgress', onProgress)
      res = await req
    } catch (err) {
      throw explain(server, err)
    }
    if (res.statusCode >= 300) throw explain(server, undefined, res.statusCode, res.body)
    return (res.headers['content-type'] ?? '').includes('json') ? JSON.parse(res.body) : res.body as T
  }
  const task = (id: string) => `tasks/${encodeURIComponent(id)}`
  return {
    server,
    submit: (form, onProgress) => call('tasks', 'POST', form, onProgress),
    task: (id) => call(task(id)),
    tasks: () => call('tasks'),
    meta: () => call('meta'),
    services: () => call('services'),
    log: (id) => call(`${task(id)}/log`),
    change: (id, op) => call(`${task(id)}/${op}`, 'POST'),
    async download (id, dest, onProgress) {
      const stream = client.stream(`${task(id)}/output`, { throwHttpErrors: true })
      if (onProgress) stream.on('downloadProgress', onProgress)
      if (typeof dest !== 'string' || isSpecial(dest)) {
        try {
          return typeof dest === 'string' ? await pipeline(stream, createWriteStream(dest)) : await pipeline(stream, dest, { end: false })
        } catch (err) {
          throw explain(server, err, (err as { response?: { statusCode: number } }).response?.statusCode, `cannot get the output of task ${id}`)
        }
      }
      const part = join(dirname(dest), `.${basename(dest)}.${process.pid}.part`)
      try {
        // 1 MiB of buffer lets fs batch the 64 KiB socket reads into fewer writes
        await pipeline(stream, createWriteStream(part, { highWaterMark: 1 << 20 }))
        renameSync(part, dest)
      } catch (err) {
        rmSync(part, { force: true })
        const status = (err as { response?: { statusCode: number } }).response?.statusCode
        if (err instanceof RequestError || status) throw explain(server, err, status, status ? `cannot get the output of task ${id}` : undefined)
        const e = err as NodeJS.ErrnoException
        throw new ClientError(`cannot write ${dest}: ${e.code ?? e.message}; choose another place with -o FILE`, EXIT.usage)
      }
    },
  }
}
