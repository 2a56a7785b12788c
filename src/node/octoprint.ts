/**
 * An OctoPrint-compatible API, so that slicers (PrusaSlicer, OrcaSlicer, SuperSlicer, Cura's
 * OctoPrint connection plugin) upload straight to a printer or a group of the farm: the requests
 * those clients send, answered as OctoPrint 1.5 does (as Moonraker's octoprint_compat does).
 *
 *   /octoprint/printer/NAME/api/...   one printer of this node
 *   /octoprint/group/GROUP/api/...    the first free printer of the group, on any node
 *   /api/...                          the node's printer, when it has only one
 *
 * An upload with print=true (or a later `select` with print) goes to the farm queue, which starts
 * it at once on a ready printer and keeps it otherwise: a busy printer or group queues the job
 * instead of refusing it. X-Api-Key is the node's --token (any key when it has none). Uploaded
 * files are kept in farm/octoprint for the retention period, so that a `select` can print them.
 */
import Router from '@koa/router'
import type { Context } from 'koa'
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { plainIp, tokenMatches } from './access.js'
import type { EdgeTools } from './app.js'
import { badRequest, HttpError, notFound } from './errors.js'
import { notGcode } from '../executors/print-run.js'
import type { FarmPrinters, PrinterView } from '../farm/printers.js'
import { copyForTask, type FarmQueue } from '../farm/queue.js'
import { OCTOPRINT_API, OCTOPRINT_VERSION } from '../farm/advertise.js'


export interface OctoPrintDeps {
  dataDir: string
  nodeName: string
  token?: string
  retentionHours?: number
  printers: FarmPrinters
  queue: FarmQueue
  /** the temperatures of a printer, as the firmware reports them (T, T0, T1, B, C) */
  temperatures: (name: string) => Record<string, { actual: number, target: number }>
  log: (line: string) => void
}

type Target = { kind: 'printer', name: string, prefix: string } | { kind: 'group', name: string, prefix: string }

const PREFIXES = ['/api', '/octoprint/printer/:printer/api', '/octoprint/group/:group/api']

/** What slicers are told of a state: OctoPrint's text and flags. */
function stateOf (s: PrinterView['state'] | 'group') {
  const text = s === 'printing' ? 'Printing' : s === 'paused' ? 'Paused' : s === 'error' ? 'Error' : s === 'disconnected' ? 'Offline' : 'Operational'
  return {
    text,
    flags: {
      operational: text !== 'Error' && text !== 'Offline',
      paused: text === 'Paused',
      printing: text === 'Printing',
      cancelling: false,
      pausing: false,
      sdReady: false,
      error: text === 'Error',
      ready: text === 'Operational',
      closedOrError: text === 'Error' || text === 'Offline',
    },
  }
}

/** A file name as kept: its base name, letters, digits and `._-` only, ending in .gcode. */
export function storedName (original: string): string {
  const base = (original.split(/[\\/]/).pop() ?? '').replace(/[^\w.-]+/g, '_').replace(/^[._]+/, '').slice(0, 120) || 'upload'
  return /\.(gcode|gco|g)$/i.test(base) ? base : `${base}.gcode`
}

const truthy = (v: string | undefined) => v !== undefined && /^(true|1|yes|on)$/i.test(v.trim())

export function octoPrintEdge (deps: OctoPrintDeps) {
  return ({ readBody }: EdgeTools): Router => {
    const r = new Router()
    const { printers, queue, log } = deps
    const files = join(deps.dataDir, 'farm', 'octoprint')
    mkdirSync(files, { recursive: true })

    /** Which printer or group the path names; 404 for one this node does not serve. */
    const target = (ctx: Context): Target => {
      const { printer, group } = ctx.params as { printer?: string, group?: string }
      const all = printers.list()
      if (printer !== undefined) {
        if (!all.some((p) => p.name === printer)) throw notFound(`no printer ${printer} on this node; it has ${all.map((p) => p.name).join(', ') || 'none'}`)
        return { kind: 'printer', name: printer, prefix: `/octoprint/printer/${encodeURIComponent(printer)}` }
      }
      if (group !== undefined) {
        if (!all.some((p) => p.groups.includes(group))) throw notFound(`no printer of group ${group} on this node`)
        return { kind: 'group', name: group, prefix: `/octoprint/group/${encodeURIComponent(group)}` }
      }
      if (all.length !== 1) {
        throw notFound(`this node has ${all.length} printers: use /octoprint/printer/NAME/api/ or /octoprint/group/GROUP/api/ (${all.map((p) => p.name).join(', ') || 'none'})`)
      }
      return { kind: 'printer', name: all[0].name, prefix: '' }
    }

    // every request carries the API key: the node's token when it has one
    r.use(async (ctx, next) => {
      ctx.state.format = 'text'
      if (deps.token) {
        const key = ctx.get('x-api-key') || (ctx.get('authorization').startsWith('Bearer ') ? ctx.get('authorization').slice(7) : '') || (ctx.query.apikey as string | undefined)
        if (!tokenMatches(deps.token, key || undefined)) throw new HttpError(403, 'invalid API key: use the node\'s --token as the API key')
      }
      await next()
    })

    const route = (method: 'get' | 'post', path: string, fn: (ctx: Context, t: Target) => unknown) => {
      for (const prefix of PREFIXES) r[method](prefix + path, async (ctx) => { await fn(ctx, target(ctx)) })
    }
    const send = (ctx: Context, data: unknown, status = 200) => { ctx.status = status; ctx.body = data }
    /** the node as the client addressed it (OctoPrint's Location and refs are absolute) */
    const base = (ctx: Context) => `${ctx.protocol}://${ctx.host}`

    route('get', '/version', (ctx) => send(ctx, { api: OCTOPRINT_API, server: OCTOPRINT_VERSION, text: `OctoPrint ${OCTOPRINT_VERSION} (rrcloud)` }))
    route('get', '/server', (ctx) => send(ctx, { version: OCTOPRINT_VERSION, server: OCTOPRINT_VERSION, safemode: null }))
    const user = (ctx: Context) => send(ctx, {
      _is_external_client: false, _login_mechanism: 'apikey', name: '_api', active: true, user: true, admin: true,
      apikey: null, permissions: [], groups: ['admins', 'users'],
    })
    route('post', '/login', user)
    route('get', '/currentuser', user)
    route('get', '/settings', (ctx, t) => send(ctx, {
      api: { enabled: true },
      appearance: { name: t.kind === 'group' ? `${t.name} group (${deps.nodeName})` : `${t.name} (${deps.nodeName})` },
      feature: { sdSupport: false, temperatureGraph: false },
      plugins: {},
    }))

    const temperature = (t: Target) => {
      if (t.kind === 'group') return {}
      const out: Record<string, { actual: number, target: number, offset: number }> = {}
      for (const [k, v] of Object.entries(deps.temperatures(t.name))) {
        const key = k === 'B' ? 'bed' : k === 'C' ? 'chamber' : k === 'T' ? 'tool0' : /^T\d+$/.test(k) ? `tool${k.slice(1)}` : undefined
        if (key && !(key in out)) out[key] = { actual: v.actual, target: v.target, offset: 0 }
      }
      return out
    }
    route('get', '/printer', (ctx, t) => {
      const s = t.kind === 'group' ? 'group' : printers.get(t.name)!.state
      send(ctx, { temperature: temperature(t), sd: { ready: false }, state: stateOf(s) })
    })
    route('get', '/job', (ctx, t) => {
      const p = t.kind === 'printer' ? printers.get(t.name)! : undefined
      const running = p && (p.state === 'printing' || p.state === 'paused') ? p : undefined
      send(ctx, {
        job: {
          file: { name: running?.job?.file ?? null, origin: running ? 'local' : null, size: running?.progress?.totalBytes ?? null, date: null },
          estimatedPrintTime: null, lastPrintTime: null, filament: { length: null, volume: null }, user: null,
        },
        progress: {
          completion: running?.progress?.percent ?? null, filepos: running?.progress?.bytesSent ?? null,
          printTime: null, printTimeLeft: null, printTimeOrigin: null,
        },
        state: stateOf(t.kind === 'group' ? 'group' : p!.state).text,
      })
    })
    route('get', '/printerprofiles', (ctx, t) => send(ctx, {
      profiles: {
        _default: {
          id: '_default', name: t.kind === 'group' ? `${t.name} group` : t.name, color: 'default', model: t.name,
          default: true, current: true, heatedBed: true, heatedChamber: false,
          axes: { x: { speed: 6000, inverted: false }, y: { speed: 6000, inverted: false }, z: { speed: 200, inverted: false }, e: { speed: 300, inverted: false } },
          extruder: { count: 1 },
        },
      },
    }))

    /** Puts a stored file in the farm queue for the target (a printer that is ready starts it at once). */
    const print = (ctx: Context, t: Target, name: string) => {
      const job = queue.add({
        tmpPath: copyForTask(join(files, name), join(deps.dataDir, 'tasks', 'tmp')),
        name, copies: 1, client: plainIp(ctx.req.socket.remoteAddress ?? ''),
        ...(t.kind === 'group' ? { group: t.name } : { printer: t.name }),
      })
      log(`octoprint: ${name} queued for ${t.kind} ${t.name} as job ${job.id}`)
      return job
    }

    /** uploaded files are kept as long as tasks are */
    const sweep = () => {
      const before = Date.now() - (deps.retentionHours ?? 24) * 3600e3
      for (const f of readdirSync(files)) {
        try { if (statSync(join(files, f)).mtimeMs < before) rmSync(join(files, f), { force: true }) } catch {}
      }
    }

    route('post', '/files/local', async (ctx, t) => {
      const body = await readBody(ctx)
      const upload = body.files.filter((f) => f.field === 'file').at(-1)
      try {
        if (!upload) throw badRequest('no file: send it as the multipart field file')
        const why = notGcode(upload.path)
        if (why) throw new HttpError(415, `${upload.originalName} cannot be printed: ${why}`)
      } catch (e) {
        for (const f of body.files) rmSync(f.path, { force: true })
        throw e
      }
      for (const f of body.files) if (f !== upload) rmSync(f.path, { force: true })
      sweep()
      const name = storedName(upload.originalName)
      renameSync(upload.path, join(files, name))
      const doPrint = truthy(body.fields.print)
      const job = doPrint ? print(ctx, t, name) : undefined
      const resource = `${base(ctx)}${t.prefix}/api/files/local/${encodeURIComponent(name)}`
      ctx.set('Location', resource)
      send(ctx, {
        files: {
          local: {
            name, display: name, path: name, origin: 'local',
            refs: { resource },
          },
        },
        done: true,
        effectiveSelect: doPrint || truthy(body.fields.select),
        effectivePrint: doPrint,
        ...(job ? { rrcloud: { job: job.id, node: deps.nodeName, position: job.position } } : {}),
      }, 201)
    })

    route('post', '/files/local/:name', async (ctx, t) => {
      const name = ctx.params.name
      const { fields } = await readBody(ctx)
      if (name !== storedName(name) || !existsSync(join(files, name))) throw notFound(`no file ${name} here: upload it first (POST .../api/files/local)`)
      if (fields.command !== 'select') throw badRequest(`command ${fields.command ?? '(none)'} is not supported here: select (with print: true) is`)
      if (truthy(fields.print)) print(ctx, t, name)
      ctx.status = 204
    })
    return r
  }
}
