import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { VERSION } from '../version.js'

/**
 * What the driving node asks of the nodes its stages run on (itself included): the JSON API of
 * src/node/app.ts, over node:http. The driver never reads a body larger than a task's view or log.
 */

/** The node could not be reached, or did not answer in time. */
export class PeerUnreachable extends Error {
  constructor (readonly url: string, message: string) {
    super(`${url}: ${message}`)
  }
}

/** The node answered with an error status. */
export class PeerRefused extends Error {
  constructor (readonly url: string, readonly status: number, message: string, readonly details: Record<string, unknown> = {}) {
    super(`${url} answered ${status}: ${message}`)
  }
}

/** A task as a node shows it, the fields the driver reads. */
export interface PeerTask {
  id: string
  service: string
  status: 'queued' | 'busy' | 'paused' | 'complete' | 'failed' | 'cancelled'
  out?: string
  percent?: number
  progress?: string
  exitCode?: number | null
  error?: string
  outSha256?: string
  outSize?: number
}

interface Options { method?: string, json?: unknown, timeoutMs?: number, signal?: AbortSignal }

/** How long a call may take: a node answers these from memory or a local read. */
const CALL_MS = 15_000
const CONNECT_MS = 3000
const MAX_BODY = 4 << 20

export interface PeerApi {
  readonly url: string
  /** the driver's own address on the way to this node, as its last call went (to tell it where to pull from) */
  localAddress (): string | undefined
  meta (timeoutMs?: number): Promise<Record<string, unknown>>
  task (id: string, waitSec?: number, signal?: AbortSignal): Promise<PeerTask>
  submit (body: unknown): Promise<PeerTask>
  cancel (id: string): Promise<PeerTask>
  log (id: string, timeoutMs?: number): Promise<string>
  missing (sha256: string[]): Promise<string[]>
  lookup (body: unknown, timeoutMs: number): Promise<{ hit: boolean, missing: string[], missingBytes?: number }>
  /** tells the node to pull a blob from another node (POST /api/v1/blobs/fetch) and waits until it holds it */
  pull (sha256: string, from: string, signal?: AbortSignal): Promise<void>
  /** a stream of a task's output (the caller checks the status) */
  output (id: string): Promise<IncomingMessage>
  /** a stream of a blob of the node's store (the caller checks the status) */
  blob (sha256: string): Promise<IncomingMessage>
}

export function peerApi (url: string, token?: string): PeerApi {
  const base = `${url}/api/v1/`
  const headers: Record<string, string> = { accept: 'application/json', 'user-agent': `rrcloud-node/${VERSION}`, ...(token ? { authorization: `Bearer ${token}` } : {}) }
  let local: string | undefined

  function open (path: string, o: Options = {}): Promise<IncomingMessage> {
    const body = o.json === undefined ? undefined : JSON.stringify(o.json)
    const u = new URL(base + path)
    const request = u.protocol === 'https:' ? httpsRequest : httpRequest
    return new Promise((resolve, reject) => {
      const req = request(u, {
        method: o.method ?? 'GET',
        headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } : {}) },
        signal: o.signal,
      })
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${o.timeoutMs ?? CALL_MS} ms`)), o.timeoutMs ?? CALL_MS)
      let connect: NodeJS.Timeout | undefined
      req.once('socket', (s) => {
        const note = () => { clearTimeout(connect); if (s.localAddress) local = s.localAddress }
        if (!s.connecting) return note()
        // a host that is gone does not refuse: it does not answer at all
        connect = setTimeout(() => req.destroy(new Error(`no connection within ${CONNECT_MS} ms`)), CONNECT_MS)
        s.once('connect', note)
      })
      req.once('response', (res) => { clearTimeout(timer); resolve(res) })
      req.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer)
        clearTimeout(connect)
        reject(e.name === 'AbortError' ? e : new PeerUnreachable(url, e.code ? `${e.code} ${e.message}` : e.message))
      })
      req.end(body)
    })
  }

  async function text (res: IncomingMessage): Promise<string> {
    let n = 0
    const chunks: Buffer[] = []
    for await (const c of res) {
      n += (c as Buffer).length
      if (n > MAX_BODY) { res.destroy(); throw new PeerUnreachable(url, 'answer too large') }
      chunks.push(c as Buffer)
    }
    return Buffer.concat(chunks).toString('utf8')
  }

  async function call<T> (path: string, o: Options = {}): Promise<T> {
    const res = await open(path, o)
    let t: string
    try {
      t = await text(res)
    } catch (e) {
      throw e instanceof PeerUnreachable ? e : new PeerUnreachable(url, (e as Error).message)
    }
    const status = res.statusCode ?? 0
    let data: unknown = t
    if ((res.headers['content-type'] ?? '').includes('json')) {
      try { data = JSON.parse(t) } catch { throw new PeerUnreachable(url, `malformed JSON (status ${status})`) }
    }
    if (status >= 300) {
      const d = (data && typeof data === 'object' ? data : {}) as Record<string, unknown>
      throw new PeerRefused(url, status, typeof d.error === 'string' ? d.error : String(t).slice(0, 200), d)
    }
    return data as T
  }

  const task = (id: string) => `tasks/${encodeURIComponent(id)}`
  return {
    url,
    localAddress: () => local,
    meta: (timeoutMs = 2000) => call('meta', { timeoutMs }),
    task: (id, waitSec, signal) => call(waitSec ? `${task(id)}?wait=${waitSec}` : task(id), { timeoutMs: CALL_MS + (waitSec ?? 0) * 1000, signal }),
    submit: (body) => call('tasks', { method: 'POST', json: body }),
    cancel: (id) => call(`${task(id)}/cancel`, { method: 'POST' }),
    log: (id, timeoutMs = 5000) => call(`${task(id)}/log`, { timeoutMs }),
    missing: async (sha256) => (await call<{ missing: string[] }>('blobs/missing', { method: 'POST', json: { sha256 } })).missing,
    lookup: (body, timeoutMs) => call('cache/lookup', { method: 'POST', json: body, timeoutMs }),
    // the node answers once it holds the blob: as long as the transfer takes, within an hour
    async pull (sha256, from, signal) { await call('blobs/fetch', { method: 'POST', json: { sha256, from }, timeoutMs: 3600_000, signal }) },
    output: (id) => open(`${task(id)}/output`, { timeoutMs: 3600_000 }),
    blob: (sha256) => open(`blobs/${sha256}`, { timeoutMs: 3600_000 }),
  }
}
