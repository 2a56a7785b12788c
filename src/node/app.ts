import Koa, { type Context } from 'koa'
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
import { createBodyReader, type ParsedBody } from './uploads.js'
import { taskDirs, type IncomingInput, type TaskRunner } from './tasks.js'
import { FINAL, TASK_ID, type Task } from './task.js'

export interface AppConfig {
  dataDir: string
  allow: BlockList
  /** which web pages may use the node (default: pages served from the LAN, see cors.ts) */
  origins?: OriginPolicy
  token?: string
  maxUpload: number
  maxField?: number
}

export interface AppDeps {
  runner: TaskRunner
  /** every descriptor, offered or not */
  services: ResolvedService[]
  meta: () => Record<string, unknown>
  /** peers this node sees on the LAN (undefined when mDNS is off) */
  peers?: () => unknown[] | undefined
  /** why a notifier URL is refused at submit time, if it is */
  notifierRefusal?: (url: string) => string | undefined
  /** sends M112 to a printer of this node by name or port; undefined when there is none; throws when it cannot */
  estop?: (printer: string) => Record<string, unknown> | undefined
}

/** longest long poll (GET /api/v1/tasks/:id?wait=SECONDS), seconds */
const MAX_WAIT = 60
const OUT_FILE = /^\d{1,12}-\d{6}(\.[a-z0-9]{1,8})?$/i
const EXT = /^[a-z0-9]{1,8}$/i

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
  const readBody = createBodyReader(dirs.tmp, { maxUpload: config.maxUpload, maxField: config.maxField ?? 32 << 20 })
  const offered = () => deps.services.filter((s) => s.available).map((s) => s.name)
  const app = new Koa({ proxy: false })
  const router = new Router()
  // a client that hangs up during a download is not the node's error
  app.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'ERR_STREAM_PREMATURE_CLOSE' && err.code !== 'ECONNRESET' && err.code !== 'EPIPE') console.error(err)
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
      // a refused request's body is not read: close rather than drain it
      if (e.status === 413 || !ctx.req.complete) ctx.set('Connection', 'close')
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

  const clientToken = (ctx: Context, body?: ParsedBody) => {
    const auth = ctx.get('authorization')
    if (auth.startsWith('Bearer ')) return auth.slice(7)
    return ctx.get('x-rrcloud-token') || (ctx.query.token as string | undefined) || body?.fields.token
  }
  const checkToken = (ctx: Context, body?: ParsedBody) => {
    if (config.token && !tokenMatches(config.token, clientToken(ctx, body))) {
      throw new HttpError(401, 'this node needs a token: send Authorization: Bearer TOKEN (rrcloud --token)')
    }
  }
  /** notifier URLs may carry secrets: shown only to requests with the token, when the node has one */
  const view = (ctx: Context) => (t: Task) => taskView(t, { notifier: !config.token || tokenMatches(config.token, clientToken(ctx)) })

  async function submit (ctx: Context): Promise<Task> {
    const body = await readBody(ctx)
    try {
      if (ctx.state.seed) ctx.state.format = formatOf(ctx, body)
      checkToken(ctx, body)
      const sub = toSubmission(ctx, body)
      const t = await runner.submit(sub)
      // an upload given twice under one name: the last one counts, the others go
      if (body.files.length > 1) {
        const used = new Set(sub.inputs.map((i) => i.tmpPath))
        for (const f of body.files) if (!used.has(f.path)) rmSync(f.path, { force: true })
      }
      return t
    } catch (e) {
      // a stored task's uploads were moved into tasks/in; a refused one's are removed here
      for (const f of body.files) rmSync(f.path, { force: true })
      throw e
    }
  }

  function toSubmission (ctx: Context, body: ParsedBody) {
    const { fields, files } = body
    const name = fields.service
    if (!name) throw badRequest('no service given: send service=NAME', { services: offered() })
    const s = deps.services.find((x) => x.name === name && x.available)
    if (!s) {
      const why = deps.services.find((x) => x.name === name)?.reason
      throw badRequest(`unknown service ${name}${why ? ` (not offered here: ${why})` : ''}; this node offers ${offered().join(', ')}`, { services: offered() })
    }
    for (const k of [...Object.keys(fields), ...files.map((f) => f.field)]) {
      if (!/^(service|format|notifier|token|printer|fileIn\d{1,3}|prearg\d{1,3})$/.test(k)) throw badRequest(`unknown field ${k}`)
    }
    const byIndex = new Map<number, IncomingInput>()
    for (const f of files) {
      const m = /^fileIn(\d+)$/.exec(f.field)
      if (!m) throw badRequest(`unexpected file field ${f.field}: inputs are fileIn0, fileIn1, ...`)
      const ext = f.originalName.includes('.') ? f.originalName.split('.').pop()! : ''
      byIndex.set(Number(m[1]), { tmpPath: f.path, ext: EXT.test(ext) ? ext.toLowerCase() : s.fileIn })
    }
    for (const [k, v] of Object.entries(fields)) {
      const m = /^fileIn(\d+)$/.exec(k)
      if (m && !byIndex.has(Number(m[1]))) byIndex.set(Number(m[1]), { content: v, ext: s.fileIn })
    }
    const allowed = allowedPreargs(s)
    for (const [k, v] of Object.entries(fields)) {
      const m = /^prearg(\d+)$/.exec(k)
      if (!m || v === '') continue
      const input = byIndex.get(Number(m[1]))
      if (!input) throw badRequest(`${k} has no fileIn${m[1]} to go with`)
      if (!allowed.includes(v)) {
        throw badRequest(`${k} "${v}" is not allowed for ${s.name}; ${allowed.length ? `allowed: ${allowed.join(' ')}` : 'it takes no prearguments'}`)
      }
      input.prearg = v
    }
    const inputs = [...byIndex.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v)
    if (inputs.length === 0) throw badRequest(`no input: send fileIn0 as a file upload or as content for ${s.name}`)
    if (inputs.length < s.minInputs || inputs.length > s.maxInputs) {
      throw badRequest(`${s.name} takes ${s.minInputs === s.maxInputs ? s.minInputs : `${s.minInputs} to ${s.maxInputs}`} input(s), got ${inputs.length}`)
    }
    const notifier = fields.notifier || undefined
    if (notifier && !/^https?:\/\/\S+$/i.test(notifier)) throw badRequest('notifier must be an http:// or https:// URL')
    const refused = notifier && deps.notifierRefusal?.(notifier)
    if (refused) throw badRequest(`notifier refused: ${refused}`)
    return { service: s.name, inputs, client: plainIp(ctx.req.socket.remoteAddress ?? ''), notifier, printer: fields.printer || undefined }
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
    ctx.body = existsSync(path) ? createReadStream(path) : ''
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
    const stop = () => runner.events.off('task', onTask)
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
  v1.get('/peers', (ctx) => {
    const peers = deps.peers?.()
    if (!peers) throw new HttpError(404, 'this node does not browse the LAN (started with --no-mdns)')
    reply(ctx, peers, 'peers')
  })
  v1.get('/tasks', (ctx) => reply(ctx, runner.list().map(view(ctx)), 'tasks'))
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
  app.use((ctx) => {
    // a known path asked with another method: 405 with what it takes
    const allow = [...new Set([router, v1].flatMap((r) => r.match(ctx.path, ctx.method).path.flatMap((l) => l.methods)))]
    if (allow.length === 0) throw notFound(`nothing at ${ctx.path}`)
    ctx.set('Allow', [...allow, 'OPTIONS'].join(', '))
    if (ctx.method === 'OPTIONS') { ctx.status = 204; return }
    throw new HttpError(405, `${ctx.method} ${ctx.path} is not supported; it takes ${allow.join(', ')}`)
  })
  return app
}
