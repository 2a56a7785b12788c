// The farm's part of the JSON API: this node's printers with their farm state, claims on them,
// clearing a bed, and this node's farm queue. See docs/http-api.md.
import Router from '@koa/router'
import type { Context } from 'koa'
import { rmSync } from 'node:fs'
import { plainIp } from './access.js'
import type { EdgeTools } from './app.js'
import { badRequest, HttpError, notFound } from './errors.js'
import { notGcode } from '../executors/print-run.js'
import { PRINTER_NAME, type FarmPrinters } from '../farm/printers.js'
import type { FarmQueue } from '../farm/queue.js'

export interface FarmEdgeDeps {
  nodeName: string
  printers: FarmPrinters
  queue: FarmQueue
  log: (line: string) => void
}

const json = (ctx: Context, data: unknown, status = 200) => {
  ctx.status = status
  ctx.type = 'application/json'
  ctx.body = JSON.stringify(data, null, 2) + '\n'
}

/** A name of a group or printer given in a request, checked. */
export function groupOrPrinter (fields: Record<string, string>): { group?: string, printer?: string } {
  const group = fields.group?.trim() || undefined
  const printer = fields.printer?.trim() || undefined
  if (!group === !printer) throw badRequest('say where to print: group=GROUP (the first free printer of the group) or printer=NAME')
  for (const v of [group, printer]) if (v !== undefined && !PRINTER_NAME.test(v)) throw badRequest(`"${v}" is not a printer or group name`)
  return group !== undefined ? { group } : { printer }
}

/** `/api/v1/printers...` and `/api/v1/queue...` */
export function farmEdge (deps: FarmEdgeDeps) {
  return ({ readBody, checkToken }: EdgeTools): Router => {
    const r = new Router({ prefix: '/api/v1' })
    const { printers, queue } = deps
    r.use(async (ctx, next) => { ctx.state.format = 'json'; await next() })
    const printerNamed = (name: string) => {
      const p = printers.get(name)
      if (!p) throw notFound(`no printer ${name} on this node`)
      return p
    }

    r.get('/printers', (ctx) => json(ctx, printers.list().map((p) => ({ node: deps.nodeName, ...p }))))
    r.get('/printers/:name', (ctx) => json(ctx, { node: deps.nodeName, ...printerNamed(ctx.params.name) }))
    r.post('/printers/:name/claim', async (ctx) => {
      checkToken(ctx)
      printerNamed(ctx.params.name)
      const { fields } = await readBody(ctx)
      const copy = fields.copy === undefined ? undefined : Number(fields.copy)
      json(ctx, printers.claim(ctx.params.name, {
        ...(fields.file ? { file: fields.file.slice(0, 200) } : {}),
        ...(fields.job ? { job: fields.job.slice(0, 64) } : {}),
        ...(copy !== undefined && Number.isInteger(copy) ? { copy } : {}),
        ...(fields.owner ? { owner: fields.owner.slice(0, 64) } : {}),
      }))
    })
    r.get('/printers/:name/claims/:claim', (ctx) => {
      const found = printers.lookup(ctx.params.name, ctx.params.claim)
      if (!found) throw notFound(`printer ${ctx.params.name} holds no claim ${ctx.params.claim}, and none of that id was used`)
      json(ctx, found)
    })
    r.delete('/printers/:name/claims/:claim', (ctx) => {
      checkToken(ctx)
      printerNamed(ctx.params.name)
      json(ctx, { released: printers.release(ctx.params.name, ctx.params.claim) })
    })
    r.post('/printers/:name/clear', (ctx) => {
      checkToken(ctx)
      printerNamed(ctx.params.name)
      const p = printers.clear(ctx.params.name)
      queue.kick()
      json(ctx, { node: deps.nodeName, ...p })
    })

    r.get('/queue', (ctx) => {
      const group = typeof ctx.query.group === 'string' ? ctx.query.group : undefined
      json(ctx, queue.list(group))
    })
    r.post('/queue', async (ctx) => {
      checkToken(ctx)
      const body = await readBody(ctx)
      const drop = () => { for (const f of body.files) rmSync(f.path, { force: true }) }
      try {
        for (const k of [...Object.keys(body.fields), ...body.files.map((f) => f.field)]) {
          if (!/^(file|group|printer|copies|format|token)$/.test(k)) throw badRequest(`unknown field ${k}: a job has file, group or printer, copies`)
        }
        const files = body.files.filter((f) => f.field === 'file')
        const file = files.at(-1)
        if (!file) throw badRequest('no file: send the G-code as the multipart field file')
        const where = groupOrPrinter(body.fields)
        const copies = body.fields.copies === undefined || body.fields.copies === '' ? 1 : Number(body.fields.copies)
        const why = notGcode(file.path)
        if (why) throw badRequest(`file cannot be printed: ${why}`)
        const name = (file.originalName.split(/[\\/]/).pop() || 'job.gcode').slice(0, 200)
        const job = queue.add({ tmpPath: file.path, name, copies, client: plainIp(ctx.req.socket.remoteAddress ?? ''), ...where })
        for (const f of body.files) if (f !== file) rmSync(f.path, { force: true })
        ctx.set('Location', `/api/v1/queue/${job.id}`)
        json(ctx, job, 201)
      } catch (e) {
        drop()
        throw e
      }
    })
    const groupField = async (ctx: Context) => {
      const { fields } = await readBody(ctx)
      const group = (fields.group ?? (typeof ctx.query.group === 'string' ? ctx.query.group : '')).trim() || undefined
      if (group !== undefined && !PRINTER_NAME.test(group)) throw badRequest(`"${group}" is not a group name`)
      return group
    }
    r.post('/queue/pause', async (ctx) => {
      checkToken(ctx)
      json(ctx, { node: deps.nodeName, paused: queue.pause(await groupField(ctx)) })
    })
    r.post('/queue/resume', async (ctx) => {
      checkToken(ctx)
      json(ctx, { node: deps.nodeName, paused: queue.resume(await groupField(ctx)) })
    })
    r.get('/queue/:id', (ctx) => json(ctx, queue.get(ctx.params.id)))
    r.delete('/queue/:id', (ctx) => {
      checkToken(ctx)
      json(ctx, queue.remove(ctx.params.id))
    })
    r.post('/queue/:id/move', async (ctx) => {
      checkToken(ctx)
      const { fields } = await readBody(ctx)
      const to = Number(fields.to ?? ctx.query.to)
      if (!Number.isInteger(to) || to < 1) throw new HttpError(400, 'give the new position: to=N (1 is the front of the queue)')
      json(ctx, queue.move(ctx.params.id, to))
    })
    return r
  }
}
