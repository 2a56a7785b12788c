import Koa, { type Context, type Middleware } from 'koa'
import Router from '@koa/router'
import { createReadStream, existsSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import type { BlockList } from 'node:net'
import { allowedPreargs, type ResolvedService } from '../executors/services.js'
import { badRequest, HttpError, notFound, toHttpError } from './errors.js'
import { isAllowed, plainIp, tokenMatches } from './access.js'
import { corsGuard, createOriginPolicy, type OriginPolicy } from './cors.js'
import { taskView, toHtml, toText, type Format } from './render.js'
import { awaitingContinue, closeAfterReply, createBodyReader, diskFull, isDiskFull, type ParsedBody } from './uploads.js'
import { taskDirs, type TaskRunner } from './tasks.js'
import { FINAL, TASK_ID, type Task } from './task.js'
import type { BlobStore } from './blobs.js'
import { missingSchema, SHA256, zodProblem } from './tree.js'
import { createSubmissionReader } from './submission.js'
import { hitLog } from './cache.js'
import type { Pass } from './admission.js'

export interface AppConfig {
  dataDir: string
  allow: BlockList
  /** which web pages may use the node (default: pages served from the LAN, see cors.ts) */
  origins?: OriginPolicy
  token?: string
  /** all the files of one task, bytes */
  maxUpload: number
  /** one text field, bytes (default 1 MiB) */
  maxField?: number
  /** all the text fields of one request, bytes (default 4 × maxField) */
  maxText?: number
  /** text fields in one request (default 256) */
  maxFields?: number
  /** how long a task that finds the queue full waits for a place before it is refused, ms (default 2000; 0: refused at once) */
  queueWaitMs?: number
  /** `: keepalive` comments on a quiet events stream, ms (default 15 s), so that idle timeouts do not cut it */
  keepaliveMs?: number
}

export interface AppDeps {
  runner: TaskRunner
  /** every descriptor, offered or not */
  services: ResolvedService[]
  meta: () => Record<string, unknown>
  /** peers this node sees on the LAN (undefined when mDNS is off) */
  peers?: () => Promise<unknown[]> | unknown[] | undefined
  /** why a notifier URL is refused at submit time, if it is */
  notifierRefusal?: (url: string) => string | undefined
  /** one line per notable event (an upload cut off) */
  log?: (line: string) => void
  /** sends M112 to a printer of this node by name or port; undefined when there is none; throws when it cannot */
  estop?: (printer: string) => Record<string, unknown> | undefined
  /** the content store (none, or one with --cache-size 0: the blob endpoints answer 404) */
  blobs?: BlobStore
  /** edges ahead of the seed API and /api/v1 (the events stream, the dashboard): each answers its own paths and passes the rest on */
  ahead?: Middleware[]
  /** more routes beside the seed API and /api/v1 (the farm, the OctoPrint-compatible API), built with the app's body reader and token check */
  edges?: Array<(tools: EdgeTools) => Router>
}

/** What the app lends the routers of its other edges. */
export interface EdgeTools {
  /** reads a form, urlencoded or JSON body within the node's limits, files streamed to tasks/tmp */
  readBody: ReturnType<typeof createBodyReader>['body']
  /** throws 401 unless the request carries the node's token (when it has one) */
  checkToken: (ctx: Context) => void
  /** reads a JSON body of any shape within the text limit (400 when malformed) */
  readJson: (ctx: Context) => Promise<unknown>
}

/** longest long poll (GET /api/v1/tasks/:id?wait=SECONDS), seconds */
const MAX_WAIT = 60
const OUT_FILE = /^\d{1,12}-\d{6}(\.[a-z0-9]{1,8})?$/i
/** a refused request's body up to this size, not yet touched, is read and dropped: its connection stays open */
const DROP_BODY = 64 << 10

const smallUnread = (ctx: Context) => {
  const length = ctx.request.length
  return length !== undefined && length <= DROP_BODY && !ctx.req.readableDidRead && !awaitingContinue.has(ctx.res)
}

function formatOf (ctx: Context, body?: ParsedBody): Format {
  const f = String(body?.fields.format ?? ctx.query.format ?? '').toLowerCase()
  if (f === 'json' || f === 'text' || f === 'html') return f
  const accept = ctx.get('accept')
  if (accept.includes('application/json')) return 'json'
  if (/mozilla|webkit|opera/i.test(ctx.get('user-agent')) && accept.includes('text/html')) return 'html'
  return 'text'
}

/**
 * Replies in the format asked for. On the seed's `/`, `format=json` answers JSON as text/plain:
 * the seed's jQuery examples call `$.parseJSON(data)`, which needs the reply as a string.
 */
function reply (ctx: Context, data: unknown, title: string, services: string[] = []) {
  const format: Format = ctx.state.format
  if (format === 'json') {
    ctx.type = ctx.state.seed && !ctx.get('accept').includes('application/json') ? 'text/plain' : 'application/json'
    ctx.body = JSON.stringify(data, null, 2) + '\n'
  } else if (format === 'html') {
    ctx.type = 'text/html'
    ctx.body = toHtml(title, data, services)
  } else {
    ctx.type = 'text/plain'
    ctx.body = toText(data)
  }
}

/** Builds the node's HTTP app (seed API at `/`, JSON API at `/api/v1`); the caller listens. */
export function createApp (config: AppConfig, deps: AppDeps): Koa {
  const { runner } = deps
  const dirs = taskDirs(config.dataDir)
  const maxField = config.maxField ?? 1 << 20
  const reader = createBodyReader(dirs.tmp, { maxUpload: config.maxUpload, maxField, maxText: config.maxText ?? 2 * maxField, maxFields: config.maxFields ?? 256 })
  const offered = () => deps.services.filter((s) => s.available).map((s) => s.name)
  const app = new Koa({ proxy: false })
  const router = new Router()
  // a client that hangs up during a download or an upload is not the node's error
  app.on('error', (err: NodeJS.ErrnoException) => {
    if (!['ERR_STREAM_PREMATURE_CLOSE', 'ECONNRESET', 'EPIPE', 'HPE_INVALID_EOF_STATE'].includes(err.code ?? '')) console.error(err)
  })

  const allowedSockets = new WeakMap<object, boolean>()
  app.use(async (ctx, next) => {
    ctx.state.format = formatOf(ctx)
    try {
      await next()
    } catch (err) {
      const e = toHttpError(err)
      if (e.status === 500) console.error(err)
      ctx.status = e.status
      reply(ctx, { error: e.message, status: e.status, ...e.extra }, 'error')
      // a body not read (refused before it came: 401, 403, 413, 503) is not kept reading: the
      // connection closes, unless the body is small and untouched (Node reads and drops it then, and
      // the client keeps its connection: a refused client that asks again costs no new connection)
      if (!ctx.req.complete && !smallUnread(ctx)) closeAfterReply(ctx)
    }
  })

  app.use(async (ctx, next) => {
    // decided once per connection: a keep-alive client sends many requests on one socket
    const socket = ctx.req.socket
    let allowed = allowedSockets.get(socket)
    if (allowed === undefined) {
      allowed = isAllowed(config.allow, socket.remoteAddress ?? '')
      allowedSockets.set(socket, allowed)
    }
    if (!allowed) {
      throw new HttpError(403, `${plainIp(ctx.req.socket.remoteAddress ?? '?')} is not allowed here (see the node's --allow)`)
    }
    await next()
  })
  app.use(corsGuard(config.origins ?? createOriginPolicy({ allow: config.allow })))
  for (const m of deps.ahead ?? []) app.use(m)

  // the token comes before the body (headers or query), so that a stranger's upload is never read
  const clientToken = (ctx: Context) => {
    const auth = ctx.get('authorization')
    if (auth.startsWith('Bearer ')) return auth.slice(7)
    return ctx.get('x-rrcloud-token') || (ctx.query.token as string | undefined)
  }
  const checkToken = (ctx: Context) => {
    if (config.token && !tokenMatches(config.token, clientToken(ctx))) {
      throw new HttpError(401, 'this node needs a token: send Authorization: Bearer TOKEN (rrcloud --token), ' +
        'X-Rrcloud-Token: TOKEN or ?token=TOKEN; a token form field in the body does not count')
    }
  }
  /** notifier URLs may carry secrets: shown only to requests with the token, when the node has one */
  const view = (ctx: Context) => (t: Task) => taskView(t, { notifier: !config.token || tokenMatches(config.token, clientToken(ctx)) })

  const queueWaitMs = config.queueWaitMs ?? 2000
  const cpuOnly = !deps.services.some((s) => s.available && s.kind === 'printer')
  /**
   * A place in the CPU queue for a task whose body is not read yet: at once, or once one frees
   * (at most --queue-wait); then 503. Prints have their own queue per printer.
   */
  const placeFor = (ctx: Context): Promise<Pass> | Pass => {
    const pass = runner.admitNow()
    if (pass) return pass
    // a client that hangs up while it waits gives its turn up
    const gone = new AbortController()
    const onClose = () => gone.abort(new HttpError(400, 'the client went away'))
    ctx.res.once('close', onClose)
    return runner.admission(queueWaitMs, gone.signal)
      .catch((e) => { throw toHttpError(e) })
      .finally(() => ctx.res.off('close', onClose))
  }

  async function submit (ctx: Context): Promise<Task> {
    checkToken(ctx)
    // where every offered service runs on the CPU queue, a place is found before the upload is read
    let pass = cpuOnly ? await placeFor(ctx) : undefined
    let body: ParsedBody
    try {
      body = await reader.body(ctx, {
        log: deps.log,
        // the service, when it came before the files, says whether they need a place in the CPU queue
        beforeFiles: async (fields) => {
          if (!pass && fields.service && serviceNamed(fields.service).kind !== 'printer') pass = await placeFor(ctx)
        },
      })
    } catch (e) {
      pass?.release()
      throw e
    }
    try {
      if (ctx.state.seed) ctx.state.format = formatOf(ctx, body)
      const sub = submission.of(body, clientOf(ctx))
      const t = await runner.submit(sub, pass)
      // an upload given twice under one name: the last one counts, the others go
      if (body.files.length > 1) {
        const used = new Set([...sub.inputs, ...sub.files ?? []].map((i) => i.tmpPath))
        for (const f of body.files) if (!used.has(f.path)) rmSync(f.path, { force: true })
      }
      return t
    } catch (e) {
      // a stored task's uploads were moved into tasks/in; a refused one's are removed here
      for (const f of body.files) rmSync(f.path, { force: true })
      throw isDiskFull(e) ? diskFull() : e
    } finally {
      pass?.release()
    }
  }

  function serviceNamed (name: string): ResolvedService {
    const s = deps.services.find((x) => x.name === name && x.available)
    if (!s) {
      const why = deps.services.find((x) => x.name === name)?.reason
      throw badRequest(`unknown service ${name}${why ? ` (not offered here: ${why})` : ''}; this node offers ${offered().join(', ')}`, { services: offered() })
    }
    return s
  }

  const submission = createSubmissionReader({ service: serviceNamed, offered, notifierRefusal: deps.notifierRefusal })
  const clientOf = (ctx: Context) => plainIp(ctx.req.socket.remoteAddress ?? '')

  /** the content store, or 404 when this node keeps none */
  const store = () => {
    if (!deps.blobs?.enabled) throw notFound('this node keeps no content store (--cache-size 0): send the files with the task (multipart)')
    return deps.blobs
  }

  function sendFile (ctx: Context, path: string, name: string) {
    if (!existsSync(path)) throw notFound(`no such file ${name}`)
    ctx.type = 'application/octet-stream'
    ctx.length = statSync(path).size
    ctx.set('Content-Disposition', `attachment; filename="${name}"`)
    // big reads: fewer, larger writes to the socket for outputs of any size
    ctx.body = createReadStream(path, { highWaterMark: 1 << 20 })
  }
  const taskId = (id: string) => {
    if (!TASK_ID.test(id)) throw notFound(`no task ${id}`)
    return id
  }
  const runnerTask = (id: string) => { try { return runner.get(id) } catch { return undefined } }
  const output = (ctx: Context, t: Task) => {
    if (!t.out) throw notFound(`task ${t.id} has no output file`)
    if (t.status !== 'complete') throw new HttpError(409, `task ${t.id} is ${t.status}; its output is there once it is complete`)
    sendFile(ctx, join(config.dataDir, t.out), t.out.split('/').pop()!)
  }
  const log = (ctx: Context, id: string) => {
    const t = runner.get(taskId(id))
    const path = join(dirs.log, t.id)
    ctx.type = 'text/plain'
    // a task completed from the cache has no log file: its log says whose result it is
    ctx.body = existsSync(path) ? createReadStream(path) : t.cached ? hitLog(t) : ''
  }

  /** Server-sent events: the task now, then on every change, until it ends. */
  const events = (ctx: Context, t: Task) => {
    const stream = new PassThrough()
    const send = (x: Task) => {
      stream.write(`event: task\ndata: ${JSON.stringify(view(ctx)(x))}\n\n`)
      if (FINAL.has(x.status)) stream.end()
    }
    const onTask = (x: Task) => { if (x.id === t.id) send(x) }
    runner.events.on('task', onTask)
    // a comment now and then: proxies and the node's own idle timeout leave a quiet stream open
    const keepalive = setInterval(() => stream.write(': keepalive\n\n'), config.keepaliveMs ?? 15_000)
    const stop = () => { clearInterval(keepalive); runner.events.off('task', onTask) }
    stream.on('close', stop)
    ctx.req.on('close', () => { stop(); stream.end() })
    ctx.type = 'text/event-stream'
    ctx.set('Cache-Control', 'no-cache')
    ctx.body = stream
    send(t)
  }

  /** The task once it ends, or as it is after `seconds` (or when the client hangs up). */
  const untilFinal = (t: Task, seconds: number, ctx: Context) => new Promise<Task>((resolve) => {
    let latest = t
    const done = () => {
      clearTimeout(timer)
      runner.events.off('task', onTask)
      ctx.res.off('close', done)
      resolve(latest)
    }
    const onTask = (x: Task) => {
      if (x.id !== t.id) return
      latest = x
      if (FINAL.has(x.status)) done()
    }
    const timer = setTimeout(done, seconds * 1000)
    runner.events.on('task', onTask)
    ctx.res.on('close', done)
  })

  // --- the seed's API ---
  const seed = async (ctx: Context, next: () => Promise<unknown>) => { ctx.state.seed = true; await next() }
  router.get('/', seed, (ctx) => {
    const service = String(ctx.query.service ?? 'info')
    if (service === 'meta') return reply(ctx, deps.meta(), 'meta')
    if (service !== 'info') throw badRequest(`GET takes service=info or service=meta; POST a form to run ${service}`)
    const id = ctx.query.id as string | undefined
    if (id) return reply(ctx, view(ctx)(runner.get(taskId(id))), `task ${id}`)
    reply(ctx, runner.list().map(view(ctx)), 'tasks', offered())
  })
  router.post('/', seed, async (ctx) => {
    const t = await submit(ctx)
    if (ctx.state.format === 'html') {
      // Post/Redirect/Get: reloading the task's page does not submit the form again
      ctx.status = 303
      ctx.set('Location', `/?service=info&id=${t.id}`)
      ctx.type = 'text/html'
      ctx.body = `<!doctype html><p>task <a href="/?service=info&amp;id=${t.id}">${t.id}</a></p>\n`
      return
    }
    // the token, if the node has one, came with the submission
    reply(ctx, taskView(t, { notifier: true }), `task ${t.id}`)
  })
  router.get('/tasks/out/:file', (ctx) => {
    const file = ctx.params.file
    if (!OUT_FILE.test(file)) throw notFound(`no such file ${file}`)
    // only the output of a complete task, as /api/v1/tasks/:id/output
    const t = runnerTask(file.split('.')[0])
    if (!t || t.out !== `tasks/out/${file}`) throw notFound(`no such file ${file}`)
    output(ctx, t)
  })
  router.get('/tasks/log/:id', (ctx) => log(ctx, ctx.params.id))

  // --- JSON API ---
  const v1 = new Router({ prefix: '/api/v1' })
  v1.use(async (ctx, next) => { ctx.state.format = 'json'; await next() })
  v1.get('/meta', (ctx) => reply(ctx, deps.meta(), 'meta'))
  v1.get('/services', (ctx) => reply(ctx, deps.services.map((s) => ({
    name: s.name, available: s.available, description: s.description, exe: s.exe, reason: s.reason,
    argInput: allowedPreargs(s), inputs: [s.minInputs, Number.isFinite(s.maxInputs) ? s.maxInputs : null],
    fileOut: s.fileOut, output: s.output, provides: s.provides,
  })), 'services'))
  v1.get('/peers', async (ctx) => {
    const peers = await deps.peers?.()
    if (!peers) throw new HttpError(404, 'this node does not browse the LAN (started with --no-mdns)')
    // the other nodes: this one hears its own advertisement too
    const self = deps.meta().id
    reply(ctx, peers.filter((p) => (p as { record?: { id?: string } }).record?.id !== self), 'peers')
  })
  v1.get('/tasks', (ctx) => reply(ctx, runner.list().map(view(ctx)), 'tasks'))
  v1.post('/blobs/missing', async (ctx) => {
    const blobs = store()
    const parsed = missingSchema.safeParse(await reader.json(ctx, { log: deps.log }))
    if (!parsed.success) throw badRequest(zodProblem(parsed.error))
    reply(ctx, { missing: blobs.missing(parsed.data.sha256) }, 'missing')
  })
  v1.put('/blobs/:sha', async (ctx) => {
    checkToken(ctx)
    const blobs = store()
    const sha = ctx.params.sha
    if (!SHA256.test(sha)) throw badRequest(`${sha} is not a SHA-256: name a blob by 64 lower-case hex digits`)
    const held = blobs.size(sha)
    // a client that waits for 100 Continue does not send what the node has
    if (held !== undefined && awaitingContinue.has(ctx.res)) {
      blobs.file(sha)
      reply(ctx, { sha256: sha, size: held }, 'blob')
      closeAfterReply(ctx)
      return
    }
    const [max, flag] = blobs.limit < config.maxUpload ? [blobs.limit, '--cache-size'] : [config.maxUpload, '--max-upload']
    const got = await reader.blob(ctx, { log: deps.log, max, flag })
    if (got.sha256 !== sha) {
      rmSync(got.path, { force: true })
      throw badRequest(`the body's SHA-256 is ${got.sha256}, not ${sha}: nothing was kept`)
    }
    let created: boolean
    try {
      created = blobs.adopt(got.path, sha, got.size)
    } catch (e) {
      rmSync(got.path, { force: true })
      throw isDiskFull(e) ? diskFull() : e
    }
    ctx.status = created ? 201 : 200
    if (created) ctx.set('Location', `/api/v1/blobs/${sha}`)
    reply(ctx, { sha256: sha, size: got.size }, 'blob')
  })
  v1.get('/blobs/:sha', (ctx) => {
    const file = store().file(ctx.params.sha)
    if (!file) throw notFound(`no blob ${ctx.params.sha} on this node`)
    ctx.set('ETag', `"${ctx.params.sha}"`)
    sendFile(ctx, file, ctx.params.sha)
  })
  v1.post('/cache/lookup', async (ctx) => {
    const sub = submission.tree(await reader.json(ctx, { log: deps.log }), clientOf(ctx))
    const r = runner.lookup(sub)
    const sizes = r.missing.map((m) => sub.sizes.get(m))
    reply(ctx, { ...r, ...(sizes.every((n) => n !== undefined) ? { missingBytes: sizes.reduce((a, n) => a! + n!, 0) } : {}) }, 'lookup')
  })
  v1.post('/tasks', async (ctx) => {
    const t = await submit(ctx)
    ctx.status = 201
    ctx.set('Location', `/api/v1/tasks/${t.id}`)
    reply(ctx, taskView(t, { notifier: true }), 'task')
  })
  v1.get('/tasks/:id', async (ctx) => {
    const t = runner.get(taskId(ctx.params.id))
    // ?wait=SECONDS: a long poll, answered once the task ends (or after SECONDS, as it is then)
    ctx.set('X-Rrcloud-Max-Wait', String(MAX_WAIT))
    const wait = ctx.query.wait === undefined ? 0 : Number(ctx.query.wait)
    if (!(wait >= 0)) throw badRequest(`wait=${String(ctx.query.wait)}: give the seconds to wait for the task to end (at most ${MAX_WAIT})`)
    // the connection's idle timeout does not cut a long poll short (the server sets it again for the next request)
    const socket = ctx.req.socket
    if (wait > 0 && socket.timeout && socket.timeout < (MAX_WAIT + 10) * 1000) socket.setTimeout((MAX_WAIT + 10) * 1000)
    reply(ctx, view(ctx)(wait > 0 && !FINAL.has(t.status) ? await untilFinal(t, Math.min(wait, MAX_WAIT), ctx) : t), 'task')
  })
  const change = (op: 'cancel' | 'pause' | 'resume') => async (ctx: Context) => {
    checkToken(ctx)
    const id = taskId(ctx.params.id)
    runner[op](id)
    // the reply shows the change once it is recorded (507 while the node cannot write)
    await runner.flushed()
    reply(ctx, view(ctx)(runner.get(id)), 'task')
  }
  v1.delete('/tasks/:id', change('cancel'))
  v1.post('/tasks/:id/cancel', change('cancel'))
  v1.post('/tasks/:id/pause', change('pause'))
  v1.post('/tasks/:id/resume', change('resume'))
  v1.get('/tasks/:id/output', (ctx) => output(ctx, runner.get(taskId(ctx.params.id))))
  v1.get('/tasks/:id/log', (ctx) => log(ctx, ctx.params.id))
  v1.get('/tasks/:id/events', (ctx) => events(ctx, runner.get(taskId(ctx.params.id))))
  v1.post('/printers/:name/estop', (ctx) => {
    checkToken(ctx)
    let done: Record<string, unknown> | undefined
    try {
      done = deps.estop?.(ctx.params.name)
    } catch (e) {
      throw new HttpError(409, (e as Error).message)
    }
    if (!done) throw notFound(`no printer ${ctx.params.name} on this node`)
    reply(ctx, done, 'emergency stop')
  })

  app.use(router.routes())
  app.use(v1.routes())
  const edges = (deps.edges ?? []).map((make) => make({ readBody: reader.body, checkToken, readJson: (ctx) => reader.json(ctx, { log: deps.log }) }))
  for (const r of edges) app.use(r.routes())
  app.use((ctx) => {
    // a known path asked with another method: 405 with what it takes
    const allow = [...new Set([router, v1, ...edges].flatMap((r) => r.match(ctx.path, ctx.method).path.flatMap((l) => l.methods)))]
    if (allow.length === 0) throw notFound(`nothing at ${ctx.path}`)
    ctx.set('Allow', [...allow, 'OPTIONS'].join(', '))
    if (ctx.method === 'OPTIONS') { ctx.status = 204; return }
    throw new HttpError(405, `${ctx.method} ${ctx.path} is not supported; it takes ${allow.join(', ')}`)
  })
  return app
}
