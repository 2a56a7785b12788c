import multer from '@koa/multer'
import { createHash, randomBytes } from 'node:crypto'
import { createWriteStream, mkdirSync, rm, rmSync, type WriteStream } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { join } from 'node:path'
import type { Context } from 'koa'
import { HttpError } from './errors.js'
import { writeSmallFile } from './new-file.js'

/** A file of a form, on disk in tasks/tmp, with its SHA-256 (hashed as it came in). */
export interface UploadedFile { field: string; path: string; originalName: string; size: number; sha256: string }
/**
 * A body's text fields and files; `json` instead for a JSON body that names its files by digest
 * (it has `inputs`): its shape is not flat fields, and the app checks it as a whole.
 */
export interface ParsedBody { fields: Record<string, string>; files: UploadedFile[]; json?: Record<string, unknown> }

export interface UploadLimits {
  /** all the files of one request, bytes */
  maxUpload: number
  /** one text field (content sent as a string is held in memory), bytes */
  maxField: number
  /** all the text of one request: form fields, or an urlencoded/JSON body, bytes */
  maxText: number
  /** text fields in one request */
  maxFields: number
}

export interface ReadOptions {
  /** called as the first file of a form starts, with the text fields sent before it; throws (or rejects) to refuse; the file waits for it */
  beforeFiles?: (fields: Record<string, string>) => void | Promise<void>
  /** one line about an upload the client cut off */
  log?: (line: string) => void
}

/**
 * Responses whose `Expect: 100-continue` is not answered yet: the server lets the app see such a
 * request first (its 'checkContinue' event), and the body reader sends `100 Continue` once it reads.
 * A request refused before (403, 401, 503, 413 by Content-Length) is answered without its body sent.
 */
export const awaitingContinue = new WeakSet<ServerResponse>()

/** Bytes of multipart framing (boundaries, part headers) beside the text: ~500 bytes for each of 256 parts. */
const FRAMING = 128 << 10
const MiB = (n: number) => n % (1 << 20) === 0 ? `${n / (1 << 20)} MiB` : `${n} bytes`

const tooMuchUpload = (max: number, what: string) =>
  new HttpError(413, `${what} over this node's limit of ${MiB(max)} of uploads per task (--max-upload)`)
const tooMuchText = (max: number) =>
  new HttpError(413, `over ${MiB(max)} of text fields in one request: send large inputs as file uploads (curl -F fileIn0=@FILE)`)
const fieldTooLarge = (field: string, max: number) =>
  new HttpError(413, `field ${field} is over ${MiB(max)}: send it as a file upload (curl -F ${field}=@FILE)`)
export const diskFull = () =>
  new HttpError(507, "the node's disk is full: free space in its --data-dir, or send the task to another node")
const diskFullCode = (e: unknown) => ['ENOSPC', 'EDQUOT', 'SQLITE_FULL'].includes((e as NodeJS.ErrnoException)?.code ?? '')
export const isDiskFull = diskFullCode

/** One multipart request as the storage engine sees it. */
interface Upload {
  fileBytes: number
  started: boolean
  error?: Error
  /** files being written or written, until kept or removed */
  paths: Set<string>
  /** files being received: stopped with the request's error */
  outs: Set<{ destroy (err: Error): void }>
  beforeFiles?: (fields: Record<string, string>) => void | Promise<void>
  /** beforeFiles as it went: files wait for it */
  checked?: Promise<void>
  abort (err: Error): void
}
const uploads = new WeakMap<IncomingMessage, Upload>()
/** a file as multer hands it to a storage engine: its data is a stream */
type StreamedFile = multer.File & { stream: NodeJS.ReadableStream & { destroyed: boolean } }

const lastValues = (body: Record<string, unknown> | undefined) =>
  Object.fromEntries(Object.entries(body ?? {}).map(([k, v]) => [k, Array.isArray(v) ? String(v[v.length - 1]) : String(v)]))

/**
 * Upload files stream to `dir` through a write stream that may hold 1 MiB: the parser is paused
 * less often than with the 16 KiB default, so a big upload arrives ~20 % faster; small ones are
 * one write as before. Bytes are counted as they arrive: past --max-upload, or on a full disk,
 * the request is refused at once and its files removed.
 */
function diskStorage (dir: string, maxUpload: number): multer.StorageEngine {
  mkdirSync(dir, { recursive: true })
  return {
    _handleFile (req, f, cb) {
      const file = f as StreamedFile
      const up = uploads.get(req)!
      const refuse = (err: Error) => { file.stream.resume(); cb(err) }
      if (up.error) return refuse(up.error)
      if (file.stream.destroyed) return cb(new Error('the upload was cut off'))
      if (!up.started) {
        up.started = true
        try {
          const check = up.beforeFiles?.(lastValues((req as { body?: Record<string, unknown> }).body))
          if (check) up.checked = check
        } catch (e) {
          up.abort(e as Error)
          return refuse(e as Error)
        }
      }
      if (up.checked) {
        // the file's data waits, unread, until the check is done
        up.checked.then(() => store(req, file, up, cb), (e: Error) => { up.abort(e); refuse(e) })
        return
      }
      store(req, file, up, cb)
    },
    _removeFile (req, file, cb) {
      uploads.get(req)?.paths.delete(file.path)
      rm(file.path, { force: true }, (err) => cb(err as Error))
    },
  }

  function store (req: IncomingMessage, file: StreamedFile, up: Upload, cb: (error?: Error | null, info?: multer.File) => void) {
    if (up.error) { file.stream.resume(); return cb(up.error) }
    const filename = tmpName()
    const path = join(dir, filename)
    const src = file.stream as NodeJS.ReadableStream & { destroyed: boolean; unpipe (dest?: NodeJS.WritableStream): void }
    up.paths.add(path)
    // known before the file is complete, so that a refused request's partial file is removed
    file.path = path
    // hashed as it comes: the content store names it by digest without reading it again
    const hash = createHash('sha256')
    let size = 0
    /** the file's data while it is small: written at once when it ends */
    let held: Buffer[] | undefined = []
    let out: WriteStream | undefined
    let settled = false
    const receiving = { destroy: (err: Error) => settle(err) }
    up.outs.add(receiving)
    const settle = (err?: Error | null) => {
      if (settled) return
      settled = true
      up.outs.delete(receiving)
      src.removeListener('data', onData).removeListener('end', onEnd).removeListener('error', settle).removeListener('close', onClose)
      if (err && diskFullCode(err)) up.abort(diskFull())
      if (!err && !up.error) {
        return cb(null, { destination: dir, filename, path, size, sha256: hash.digest('hex') } as Partial<multer.File> as multer.File)
      }
      held = undefined
      if (out) { src.unpipe(out); out.destroy() }
      up.paths.delete(path)
      rm(path, { force: true }, () => cb(up.error ?? err!))
    }
    /** a file that outgrew memory goes on through a write stream that may hold 1 MiB */
    const spill = () => {
      const w = out = createWriteStream(path, { highWaterMark: 1 << 20, flags: 'wx' })
      for (const chunk of held!) w.write(chunk)
      held = undefined
      w.on('error', settle)
      w.on('finish', () => settle())
      src.pipe(w)
    }
    const onData = (chunk: Buffer) => {
      up.fileBytes += chunk.length
      if (up.fileBytes > maxUpload) return up.abort(tooMuchUpload(maxUpload, `with ${file.originalname || file.fieldname}, the uploads are`))
      hash.update(chunk)
      size += chunk.length
      if (held) {
        held.push(chunk)
        if (size > HELD_BYTES) spill()
      }
    }
    let ended = false
    const onClose = () => { if (!ended) settle(new Error('the upload was cut off')) }
    const onEnd = () => {
      ended = true
      if (!held) return
      // one open (a new file: the thread pool's), then the bytes written and the file closed here
      const data = held.length === 1 ? held[0] : Buffer.concat(held, size)
      writeSmallFile(path, data, 'wx').then(() => {
        // refused meanwhile: the file goes
        if (settled) rm(path, { force: true }, () => {})
        else settle()
      }, settle)
    }
    src.on('data', onData)
    src.on('end', onEnd)
    src.on('error', settle)
    src.on('close', onClose)
  }
}

/** what an upload holds in memory before it goes to its file through a stream */
const HELD_BYTES = 64 << 10

/** names of uploads in tasks/tmp: this process's own prefix and a count */
const tmpPrefix = randomBytes(6).toString('hex')
let tmpCount = 0
const tmpName = () => `${tmpPrefix}-${(++tmpCount).toString(36)}`

const LINGER_MS = 2000
const LINGER_BYTES = 8 << 20

/**
 * A reply to a request whose body was not read (refused before it came, or cut short) closes the
 * connection. Node closes it the moment the reply is out, and a client still sending then gets a
 * reset, which may come before it has read the reply. Instead, as nginx's lingering close does,
 * the rest is discarded until the client hangs up, for at most 2 s and 8 MiB.
 */
export function closeAfterReply (ctx: Context) {
  ctx.set('Connection', 'close')
  const socket = ctx.req.socket
  ctx.res.once('finish', () => {
    // the server's destroySoon() would destroy the socket once the reply is written
    socket.off('finish', socket.destroy)
    if (socket.destroyed) return
    let bytes = 0
    const close = () => { clearTimeout(timer); socket.destroy() }
    const timer = setTimeout(close, LINGER_MS)
    socket.on('data', (chunk: Buffer) => { bytes += chunk.length; if (bytes > LINGER_BYTES) close() })
    socket.once('end', close)
    socket.once('close', () => clearTimeout(timer))
    ctx.req.resume()
  })
}

/** Sends `100 Continue` to a client that waits for it, as the body is about to be read. */
function letBodyCome (ctx: Context) {
  if (awaitingContinue.delete(ctx.res) && !ctx.res.headersSent) ctx.res.writeContinue()
}

const peer = (ctx: Context) => (ctx.req.socket.remoteAddress ?? '?').replace(/^::ffff:/, '')

/**
 * Reads request bodies: `body`, a task submission: multipart (files streamed to `tmpDir` as they
 * arrive, hashed on the way), urlencoded (the seed's jQuery examples) or JSON; `json`, any JSON;
 * `blob`, a raw upload for the content store. Limits are checked against Content-Length before the body
 * is read, then counted as it arrives; a request over one is answered at once, without reading the
 * rest. Files of a refused or cut-off request are deleted.
 */
export function createBodyReader (tmpDir: string, limits: UploadLimits) {
  const upload = multer({
    storage: diskStorage(tmpDir, limits.maxUpload),
    // the name as sent: a part named `..` is otherwise dropped without a word (its base name is empty)
    preservePath: true,
    limits: { fieldSize: limits.maxField, files: 64, fields: limits.maxFields, parts: limits.maxFields + 64 },
  } as multer.Options).any()

  /** a client that went away, or was idle past the server's timeout, makes one line in the log */
  function watchCutOff (ctx: Context, opts: ReadOptions, bytes: () => number) {
    let why = 'the client hung up'
    let told = false
    const onTimeout = () => {
      why = `no data for ${Math.round((ctx.req.socket.timeout ?? 0) / 1000)} s`
      ctx.req.socket.destroy()
    }
    ctx.req.on('timeout', onTimeout)
    return {
      stop: () => { ctx.req.off('timeout', onTimeout) },
      /** whether the body was cut off (said once) */
      cutOff: () => {
        if (ctx.req.complete) return false
        if (!told) opts.log?.(`upload from ${peer(ctx)} cut off after ${bytes()} bytes: ${why}`)
        told = true
        return true
      },
    }
  }

  function readText (ctx: Context, opts: ReadOptions): Promise<string> {
    const max = limits.maxText
    if ((ctx.request.length ?? 0) > max) throw tooMuchText(max)
    letBodyCome(ctx)
    const req = ctx.req
    let size = 0
    const watch = watchCutOff(ctx, opts, () => size)
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = []
      const done = (err?: Error) => {
        watch.stop()
        req.off('data', onData).off('end', onEnd).off('close', onClose).off('error', onClose)
        if (err) reject(err)
        else resolve(Buffer.concat(chunks).toString('utf8'))
      }
      const onData = (chunk: Buffer) => {
        size += chunk.length
        // the rest is not read: the reply closes the connection
        if (size > max) { req.pause(); done(tooMuchText(max)) } else chunks.push(chunk)
      }
      const onEnd = () => done()
      const onClose = () => { if (watch.cutOff()) done(new HttpError(400, 'the upload was cut off')) }
      req.on('data', onData).on('end', onEnd).on('close', onClose).on('error', onClose)
    })
  }

  /** the fields of an urlencoded or JSON body, within the limits of fields */
  function checked (fields: Record<string, string>): ParsedBody {
    const names = Object.keys(fields)
    if (names.length > limits.maxFields) throw new HttpError(413, `over ${limits.maxFields} fields in one request`)
    for (const k of names) if (Buffer.byteLength(fields[k]) > limits.maxField) throw fieldTooLarge(k, limits.maxField)
    return { fields, files: [] }
  }

  async function readMultipart (ctx: Context, opts: ReadOptions): Promise<ParsedBody> {
    const req = ctx.req
    const length = ctx.request.length
    if (length !== undefined && length > limits.maxUpload + limits.maxText + FRAMING) {
      throw tooMuchUpload(limits.maxUpload, `the request is ${length} bytes,`)
    }
    letBodyCome(ctx)
    let bodyBytes = 0
    let abort!: (err: Error) => void
    const aborted = new Promise<never>((_resolve, reject) => { abort = reject })
    const up: Upload = {
      fileBytes: 0,
      started: false,
      paths: new Set(),
      outs: new Set(),
      beforeFiles: opts.beforeFiles,
      abort (err) {
        if (up.error) return
        up.error = err
        // stop reading: the reply closes the connection
        req.unpipe()
        req.pause()
        for (const out of up.outs) out.destroy(err)
        abort(err)
      },
    }
    uploads.set(req, up)
    const onData = (chunk: Buffer) => {
      bodyBytes += chunk.length
      // what is not file data is text and framing: held in memory, so counted as it comes
      if (bodyBytes - up.fileBytes > limits.maxText + FRAMING) up.abort(tooMuchText(limits.maxText))
    }
    req.on('data', onData)
    const watch = watchCutOff(ctx, opts, () => bodyBytes)
    const parsed = upload(ctx, async () => {})
    parsed.catch(() => {})
    try {
      await Promise.race([parsed, aborted])
    } catch (err) {
      const e = err as { code?: string; field?: string; message: string }
      up.error ??= err as Error
      const files = ((ctx.request as { files?: Express.Multer.File[] }).files ?? [])
      files.forEach((f) => rmSync(f.path, { force: true }))
      for (const p of up.paths) rmSync(p, { force: true })
      if (err instanceof HttpError) throw err
      if (watch.cutOff()) throw new HttpError(400, 'the upload was cut off')
      if (diskFullCode(err)) throw diskFull()
      if (e.code === 'LIMIT_FIELD_VALUE') throw fieldTooLarge(e.field ?? '', limits.maxField)
      if (e.code === 'LIMIT_FIELD_COUNT') throw new HttpError(413, `over ${limits.maxFields} fields in one request`)
      if (e.code?.startsWith('LIMIT_')) throw new HttpError(413, `form too large: ${e.message}`)
      throw new HttpError(400, `malformed multipart form: ${e.message}`)
    } finally {
      req.off('data', onData)
      watch.stop()
    }
    const files = ((ctx.request as { files?: Express.Multer.File[] }).files ?? [])
    const fields = lastValues((ctx.request as { body?: Record<string, unknown> }).body)
    if (Object.values(fields).reduce((n, v) => n + Buffer.byteLength(v), 0) > limits.maxText) {
      files.forEach((f) => rmSync(f.path, { force: true }))
      throw tooMuchText(limits.maxText)
    }
    return {
      fields,
      files: files.map((f) => ({ field: f.fieldname, path: f.path, originalName: f.originalname, size: f.size, sha256: (f as { sha256?: string }).sha256! })),
    }
  }

  /** A JSON body of any shape, within the text limit. */
  async function readJson (ctx: Context, opts: ReadOptions = {}): Promise<unknown> {
    const text = await readText(ctx, opts)
    try {
      return JSON.parse(text)
    } catch (err) {
      throw new HttpError(400, `malformed JSON body: ${(err as Error).message}`)
    }
  }

  /**
   * A raw body (a blob), streamed to `tmpDir` while it is hashed. Over `max` (checked against
   * Content-Length first, then as it arrives) it is refused at once; a refused, cut-off or
   * unwritable upload leaves no file.
   */
  function readBlob (ctx: Context, opts: ReadOptions & { max: number, flag: string }): Promise<{ path: string, sha256: string, size: number }> {
    const tooLarge = () => new HttpError(413, `the blob is over this node's limit of ${MiB(opts.max)} (${opts.flag})`)
    const length = ctx.request.length
    if (length !== undefined && length > opts.max) throw tooLarge()
    letBodyCome(ctx)
    mkdirSync(tmpDir, { recursive: true })
    const path = join(tmpDir, randomBytes(12).toString('hex'))
    const req = ctx.req
    const out = createWriteStream(path, { highWaterMark: 1 << 20 })
    const hash = createHash('sha256')
    let size = 0
    const watch = watchCutOff(ctx, opts, () => size)
    return new Promise((resolve, reject) => {
      let settled = false
      const finish = (err?: Error) => {
        if (settled) return
        settled = true
        req.off('data', onData).off('close', onClose).off('error', onClose)
        watch.stop()
        if (!err) return resolve({ path, sha256: hash.digest('hex'), size })
        // the rest is not read: the reply closes the connection
        req.unpipe(out)
        req.pause()
        out.destroy()
        rm(path, { force: true }, () => reject(err))
      }
      const onData = (chunk: Buffer) => {
        size += chunk.length
        if (size > opts.max) finish(tooLarge())
        else hash.update(chunk)
      }
      const onClose = () => { if (watch.cutOff()) finish(new HttpError(400, 'the upload was cut off')) }
      req.on('data', onData).on('close', onClose).on('error', onClose)
      out.on('error', (e) => finish(diskFullCode(e) ? diskFull() : e))
      out.on('finish', () => finish())
      req.pipe(out)
    })
  }

  async function readBody (ctx: Context, opts: ReadOptions = {}): Promise<ParsedBody> {
    const type = ctx.request.type
    if (type === 'multipart/form-data') return readMultipart(ctx, opts)
    if (type === 'application/x-www-form-urlencoded') {
      return checked(Object.fromEntries(new URLSearchParams(await readText(ctx, opts))))
    }
    if (type === 'application/json') {
      let data: unknown
      try {
        data = JSON.parse(await readText(ctx, opts))
      } catch (err) {
        if (err instanceof HttpError) throw err
        throw new HttpError(400, `malformed JSON body: ${(err as Error).message}`)
      }
      if (!data || typeof data !== 'object' || Array.isArray(data)) throw new HttpError(400, 'JSON body must be an object of form fields')
      // files named by digest: checked as a whole by the app
      if ('inputs' in data) return { fields: {}, files: [], json: data as Record<string, unknown> }
      const field = ([k, v]: [string, unknown]) => {
        if (v !== null && typeof v === 'object') throw new HttpError(400, `JSON field ${k} is ${Array.isArray(v) ? 'an array' : 'an object'}: give a string, a number or true/false`)
        return [k, String(v)]
      }
      // null: the field is not given
      return checked(Object.fromEntries(Object.entries(data).filter(([, v]) => v !== null).map(field)))
    }
    if (ctx.request.length === 0 || (!ctx.request.length && !ctx.get('transfer-encoding'))) return { fields: {}, files: [] }
    throw new HttpError(415, `unsupported body type ${type || '(none)'}: send multipart/form-data, urlencoded or JSON`)
  }

  return { body: readBody, json: readJson, blob: readBlob }
}
