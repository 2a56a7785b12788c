import { request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type RequestOptions } from 'node:http'
import { pieces } from './files.js'
import type { FormFile, StreamingForm } from './form.js'

/**
 * The client's HTTP, on node:http alone: a synchronous `echo.cloud` spends most of its time
 * starting up, and an HTTP library costs more to load than the requests take on a LAN. Bodies are
 * streamed both ways (never held whole), with progress.
 */

/** Bytes moved so far; `total` when known, `percent` 0..1 (0 while the total is unknown). */
export interface Progress { percent: number; transferred: number; total?: number }
export type OnProgress = (p: Progress) => void

/** A failed exchange: `code` as node:net gives it (ECONNREFUSED, ...), ETIMEDOUT for our timeouts. */
export class RequestError extends Error {
  constructor (message: string, readonly code: string) {
    super(message)
  }
}

export interface Reply { statusCode: number; headers: IncomingHttpHeaders; body: string }

export interface RequestInit {
  method?: string
  headers?: Record<string, string>
  /** ms until the connection must be up */
  connectTimeoutMs?: number
  /** ms for the whole exchange, body included (none when undefined) */
  timeoutMs?: number
}


const https = async () => (await import('node:https')).request

function asError (err: unknown): RequestError {
  if (err instanceof RequestError) return err
  const e = err as NodeJS.ErrnoException
  return new RequestError(e?.message ?? String(err), e?.code ?? 'ERR_REQUEST')
}

/** Starts a request with the connect and total timeouts armed; the caller writes the body. */
async function start (url: string, o: RequestInit): Promise<{ req: ClientRequest; response: Promise<IncomingMessage>; clear: () => void }> {
  const u = new URL(url)
  const request = u.protocol === 'https:' ? await https() : httpRequest
  const opts: RequestOptions = { method: o.method ?? 'GET', headers: o.headers }
  const req = request(u, opts)
  let total: NodeJS.Timeout | undefined
  let connect: NodeJS.Timeout | undefined
  const fail = (code: string, what: string) => req.destroy(new RequestError(`${what} (${code})`, code))
  if (o.timeoutMs !== undefined) total = setTimeout(() => fail('ETIMEDOUT', `no answer within ${o.timeoutMs} ms`), o.timeoutMs)
  if (o.connectTimeoutMs !== undefined) {
    req.once('socket', (s) => {
      if (!s.connecting) return
      connect = setTimeout(() => fail('ETIMEDOUT', `no connection within ${o.connectTimeoutMs} ms`), o.connectTimeoutMs)
      s.once('connect', () => clearTimeout(connect))
    })
  }
  const clear = () => { clearTimeout(total); clearTimeout(connect) }
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve)
    req.once('error', (e) => { clear(); reject(asError(e)) })
  })
  return { req, response, clear }
}

async function readText (res: IncomingMessage): Promise<string> {
  res.setEncoding('utf8')
  let body = ''
  for await (const chunk of res) body += chunk
  return body
}

/** A request with a small (or no) body; the answer's body as text, whatever its status. */
export async function fetchText (url: string, o: RequestInit & { body?: string } = {}): Promise<Reply> {
  const { req, response, clear } = await start(url, {
    ...o, headers: { ...o.headers, ...(o.body !== undefined ? { 'content-length': String(Buffer.byteLength(o.body)) } : {}) },
  })
  req.end(o.body)
  try {
    const res = await response
    return { statusCode: res.statusCode ?? 0, headers: res.headers, body: await readText(res) }
  } catch (err) {
    throw asError(err)
  } finally {
    clear()
  }
}

const quote = (s: string) => s.replace(/\r/g, '%0D').replace(/\n/g, '%0A').replace(/"/g, '%22')

/** POSTs a multipart form, its files streamed from disk (see sendBody). */
export async function postForm (url: string, form: StreamingForm, o: RequestInit = {}, onProgress?: OnProgress): Promise<Reply> {
  // unique enough to appear in no file by chance; node:crypto would cost start-up time
  const boundary = `----rrcloud${Date.now().toString(36)}${process.pid.toString(36)}${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`
  const parts: Array<Buffer | FormFile> = []
  for (const [name, value] of form.entries()) {
    if (typeof value !== 'string') {
      parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${quote(name)}"; filename="${quote(value.name)}"\r\n` +
        `Content-Type: ${value.type || 'application/octet-stream'}\r\n\r\n`), value, Buffer.from('\r\n'))
    } else {
      parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${quote(name)}"\r\n\r\n${String(value)}\r\n`))
    }
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`))
  return sendBody(url, 'POST', `multipart/form-data; boundary=${boundary}`, parts, o, onProgress)
}

/** PUTs one file, streamed from disk (a blob of a node's store). */
export function putFile (url: string, file: FormFile, o: RequestInit = {}, onProgress?: OnProgress): Promise<Reply> {
  return sendBody(url, 'PUT', 'application/octet-stream', [file], o, onProgress)
}

/**
 * Sends a body made of buffers and files read from disk as it goes, its length known up front. A
 * node that answers before it has the whole body (it refuses, e.g. when full) is heard: its answer
 * is returned and the rest of the upload is dropped.
 */
async function sendBody (url: string, method: string, type: string, parts: Array<Buffer | FormFile>, o: RequestInit, onProgress?: OnProgress): Promise<Reply> {
  const total = parts.reduce((n, p) => n + (Buffer.isBuffer(p) ? p.length : p.size), 0)
  const { req, response, clear } = await start(url, {
    ...o, method, headers: { ...o.headers, 'content-type': type, 'content-length': String(total) },
  })
  let answered: IncomingMessage | undefined
  response.then((r) => { answered = r }, () => {})
  let sent = 0
  const progress = (n: number) => {
    sent += n
    onProgress?.({ transferred: sent, total, percent: total ? sent / total : 1 })
  }
  const upload = async () => {
    onProgress?.({ transferred: 0, total, percent: 0 })
    for (const p of parts) {
      if (answered || req.destroyed) return
      if (Buffer.isBuffer(p)) {
        if (!req.write(p)) await drained(req)
        progress(p.length)
        continue
      }
      // 1 MiB reads for big files; a small one gets a buffer of its size, not a MiB to allocate
      for (const chunk of pieces(p.path, Math.max(16 << 10, Math.min(p.size, 1 << 20)))) {
        if (answered || req.destroyed) return
        if (!req.write(chunk)) await drained(req)
        progress(chunk.length)
      }
    }
    req.end()
  }
  const up = upload()
  let uploaded = false
  up.then(() => { uploaded = true }, () => {})
  try {
    // an answer before the whole body was sent (a refusal) ends the upload
    const res = await Promise.race([response, up.then(() => response)])
    const body = await readText(res)
    if (!uploaded) req.destroy()
    return { statusCode: res.statusCode ?? 0, headers: res.headers, body }
  } catch (err) {
    if (answered) return { statusCode: answered.statusCode ?? 0, headers: answered.headers, body: await readText(answered).catch(() => '') }
    req.destroy()
    throw asError(err)
  } finally {
    clear()
  }
}

/** Resolves once the request can take more, rejects if it fails first. */
function drained (req: ClientRequest): Promise<void> {
  return new Promise((resolve, reject) => {
    const ok = () => { req.off('error', bad); req.off('close', ok); resolve() }
    const bad = (e: Error) => { req.off('drain', ok); req.off('close', ok); reject(e) }
    req.once('drain', ok)
    req.once('error', bad)
    req.once('close', ok)
  })
}

/** A GET whose answer is read as a stream (a download); the caller checks the status. */
export async function openStream (url: string, o: RequestInit = {}): Promise<IncomingMessage> {
  const { req, response, clear } = await start(url, o)
  req.end()
  try {
    const res = await response
    clear()
    return res
  } catch (err) {
    clear()
    throw asError(err)
  }
}
