import Router from '@koa/router'
import type { Context } from 'koa'
import { z } from 'zod'
import type { EdgeTools } from './app.js'
import type { BlobPuller } from './blob-pull.js'
import { rmSync } from 'node:fs'
import type { ServiceDescriptor } from '../executors/services.js'
import type { BlobStore } from './blobs.js'
import { plainIp, tokenMatches } from './access.js'
import { badRequest, HttpError, notFound } from './errors.js'
import { pipelineFromForm } from './pipeline-form.js'
import { diskFull, isDiskFull } from './uploads.js'
import { SHA256, zodProblem } from './tree.js'
import { FINAL_PIPELINE, PIPELINE_ID, pipelineView, type Pipeline } from '../pipeline/pipeline.js'
import type { Pipelines } from '../pipeline/driver.js'

/** longest long poll of a pipeline, seconds */
const MAX_WAIT = 60

const fetchSchema = z.object({ sha256: z.string().regex(SHA256, 'a SHA-256: 64 lower-case hex digits'), from: z.string().min(1).max(2048) }).strict()

/** the token a request carries: `Authorization: Bearer`, `X-Rrcloud-Token` or `?token=`, as the app reads it */
const tokenOf = (ctx: Context) => {
  const auth = ctx.get('authorization')
  if (auth.startsWith('Bearer ')) return auth.slice(7)
  return ctx.get('x-rrcloud-token') || (typeof ctx.query.token === 'string' ? ctx.query.token : undefined)
}

const json = (ctx: Context, data: unknown) => {
  ctx.type = 'application/json'
  ctx.body = JSON.stringify(data, null, 2) + '\n'
}

/**
 * The routes of pipelines (`/api/v1/pipelines`) and of blobs passed node to node
 * (`POST /api/v1/blobs/fetch`): an edge of the app beside its own routes.
 */
export function pipelineEdge (deps: {
  pipelines: Pipelines, puller: BlobPuller, token?: string
  /** for pipelines sent as forms: the store their files go into, and the descriptors of the stages' services */
  blobs: BlobStore, services: () => ServiceDescriptor[], log?: (line: string) => void
}) {
  const { pipelines, puller } = deps
  return ({ checkToken, readJson, readBody }: EdgeTools): Router => {
    const v1 = new Router({ prefix: '/api/v1' })
    v1.use(async (ctx, next) => { ctx.state.format = 'json'; await next() })
    /** notifier URLs may carry secrets: shown only to requests with the token, when the node has one */
    const trusted = (ctx: Context) => !deps.token || tokenMatches(deps.token, tokenOf(ctx))
    const view = (ctx: Context) => (p: Pipeline) => pipelineView(p, { notifier: trusted(ctx) })
    const id = (ctx: Context) => {
      const x = ctx.params.id
      if (!PIPELINE_ID.test(x)) throw notFound(`no pipeline ${x}`)
      return x
    }
    /** the pipeline once it ends, or as it is after `seconds` (or when the client hangs up) */
    const untilFinal = (p: Pipeline, seconds: number, ctx: Context) => new Promise<Pipeline>((resolve) => {
      const done = () => {
        clearTimeout(timer)
        pipelines.events.off('pipeline', on)
        ctx.res.off('close', done)
        resolve(pipelines.get(p.id))
      }
      const on = (x: Pipeline) => { if (x.id === p.id && FINAL_PIPELINE.has(x.status)) done() }
      const timer = setTimeout(done, seconds * 1000)
      pipelines.events.on('pipeline', on)
      ctx.res.on('close', done)
    })

    v1.post('/blobs/fetch', async (ctx) => {
      checkToken(ctx)
      const parsed = fetchSchema.safeParse(await readJson(ctx))
      if (!parsed.success) throw badRequest(zodProblem(parsed.error))
      // the transfer may outlast the connection's idle timeout: nothing goes either way meanwhile
      ctx.req.socket.setTimeout(0)
      const r = await puller.pull(parsed.data.sha256, parsed.data.from, tokenOf(ctx))
      ctx.status = r.pulled ? 201 : 200
      json(ctx, r)
    })

    /**
     * A pipeline as a multipart form: its files go into the content store (hashed as they came),
     * then it is created as the JSON API would; a refused form's files are removed.
     */
    const fromForm = async (ctx: Context) => {
      if (!deps.blobs.enabled) throw new HttpError(409, 'this node keeps no content store (--cache-size 0), where the files of a pipeline wait for their stages: send it to another node')
      const body = await readBody(ctx, { log: deps.log })
      try {
        const request = pipelineFromForm(body, deps.services())
        // the files wait in the store for their stages: all of them must fit in it at once
        const bytes = body.files.reduce((n, f) => n + f.size, 0)
        if (bytes > deps.blobs.limit) {
          const big = body.files.reduce((a, f) => f.size > a.size ? f : a)
          throw new HttpError(413, `${big.field}: the files of this pipeline (${bytes} bytes) are more than this node's content store holds (--cache-size ${deps.blobs.limit} bytes)`, { field: big.field })
        }
        // a file sent twice (under two fields) is kept once
        for (const f of body.files) deps.blobs.adopt(f.path, f.sha256, f.size)
        return request
      } catch (e) {
        for (const f of body.files) rmSync(f.path, { force: true })
        throw isDiskFull(e) ? diskFull() : e
      }
    }

    v1.post('/pipelines', async (ctx) => {
      checkToken(ctx)
      const request = ctx.is('multipart/form-data') ? await fromForm(ctx) : await readJson(ctx)
      const p = pipelines.create(request, plainIp(ctx.req.socket.remoteAddress ?? ''), tokenOf(ctx))
      ctx.status = 201
      ctx.set('Location', `/api/v1/pipelines/${p.id}`)
      json(ctx, pipelineView(p, { notifier: true }))
    })
    v1.get('/pipelines', (ctx) => json(ctx, pipelines.list().map(view(ctx))))
    v1.get('/pipelines/:id', async (ctx) => {
      const p = pipelines.get(id(ctx))
      ctx.set('X-Rrcloud-Max-Wait', String(MAX_WAIT))
      const wait = ctx.query.wait === undefined ? 0 : Number(ctx.query.wait)
      if (!(wait >= 0)) throw badRequest(`wait=${String(ctx.query.wait)}: give the seconds to wait for the pipeline to end (at most ${MAX_WAIT})`)
      const socket = ctx.req.socket
      if (wait > 0 && socket.timeout && socket.timeout < (MAX_WAIT + 10) * 1000) socket.setTimeout((MAX_WAIT + 10) * 1000)
      json(ctx, view(ctx)(wait > 0 && !FINAL_PIPELINE.has(p.status) ? await untilFinal(p, Math.min(wait, MAX_WAIT), ctx) : p))
    })
    const cancel = (ctx: Context) => {
      checkToken(ctx)
      json(ctx, view(ctx)(pipelines.cancel(id(ctx))))
    }
    v1.post('/pipelines/:id/cancel', cancel)
    v1.delete('/pipelines/:id', cancel)
    v1.get('/pipelines/:id/log', async (ctx) => {
      const text = await pipelines.log(id(ctx))
      ctx.type = 'text/plain'
      ctx.body = text
    })
    v1.get('/pipelines/:id/stages/:n/output', async (ctx) => {
      const n = Number(ctx.params.n)
      if (!Number.isInteger(n) || n < 1) throw notFound(`no stage ${ctx.params.n}`)
      const out = await pipelines.output(id(ctx), n)
      ctx.type = 'application/octet-stream'
      if (out.size !== undefined) ctx.length = out.size
      ctx.set('Content-Disposition', `attachment; filename="${out.name.replace(/[^\w.-]/g, '_')}"`)
      ctx.body = out.stream
      out.stream.on('error', () => ctx.res.destroy())
    })
    return v1
  }
}
