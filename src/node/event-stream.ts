// GET /api/v1/events: the node's events as server-sent events (see events.ts and docs/http-api.md).
import type { Context, Middleware } from 'koa'
import { PassThrough } from 'node:stream'
import { tokenMatches } from './access.js'
import { badRequest, HttpError } from './errors.js'
import { EVENT_TYPES, type EventHub, type EventType, type HubEvent } from './events.js'

export const EVENTS_PATH = '/api/v1/events'

export interface EventStreamConfig {
  token?: string
  /** `: keepalive` comments on a quiet stream, ms (default 15 s) */
  keepaliveMs?: number
  /** a client that reads slower than this many bytes pile up is cut off; it reconnects and resumes (default 1 MiB) */
  maxBufferedBytes?: number
  /** how long a browser waits before it reconnects, ms (the stream's `retry:`; default 2000) */
  retryMs?: number
}

function typesOf (ctx: Context): ReadonlySet<EventType> {
  const q = ctx.query.events
  if (q === undefined || q === '') return new Set(EVENT_TYPES)
  const asked = String(q).split(',').map((s) => s.trim()).filter(Boolean)
  for (const t of asked) {
    if (!(EVENT_TYPES as readonly string[]).includes(t)) throw badRequest(`events=${String(q)}: the events are ${EVENT_TYPES.join(', ')}`)
  }
  return new Set(asked as EventType[])
}

const frame = (e: { id?: string, event: string, data: string }) =>
  `${e.id ? `id: ${e.id}\n` : ''}event: ${e.event}\ndata: ${e.data}\n\n`

/**
 * Streams the hub's events. A client without `Last-Event-ID` (header, or `?lastEventId=`) gets the
 * state now (stats, printers, peers) and then every change; one with it gets the events after
 * that id, or `reset` and the state now when they are no longer kept.
 */
export function eventStream (hub: EventHub, config: EventStreamConfig = {}): Middleware {
  const maxBuffered = config.maxBufferedBytes ?? 1 << 20
  return async (ctx, next) => {
    if (ctx.path !== EVENTS_PATH) return next()
    ctx.state.format = 'json'
    if (ctx.method === 'OPTIONS') {
      ctx.set('Allow', 'GET, HEAD, OPTIONS')
      ctx.status = 204
      return
    }
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      ctx.set('Allow', 'GET, HEAD, OPTIONS')
      throw new HttpError(405, `${ctx.method} ${EVENTS_PATH} is not supported; it takes GET`)
    }
    const types = typesOf(ctx)
    const auth = ctx.get('authorization')
    const given = auth.startsWith('Bearer ') ? auth.slice(7) : ctx.get('x-rrcloud-token') || (ctx.query.token as string | undefined)
    // a task's notifier only to requests with the token, as elsewhere
    const full = !config.token || tokenMatches(config.token, given)
    ctx.type = 'text/event-stream'
    ctx.set('Cache-Control', 'no-cache, no-transform')
    ctx.set('X-Accel-Buffering', 'no')
    if (ctx.method === 'HEAD') { ctx.status = 200; return }

    const stream = new PassThrough()
    const send = (e: HubEvent) => {
      if (!types.has(e.event)) return
      stream.write(frame({ id: e.id, event: e.event, data: full && e.full ? e.full : e.data }))
      // a client that does not read: cut it off; it comes back with Last-Event-ID
      if (stream.writableLength > maxBuffered) stream.end()
    }
    stream.write(`retry: ${config.retryMs ?? 2000}\n\n`)
    // the LAN is browsed while someone follows its peers
    const release = types.has('peer') ? hub.holdPeers() : () => {}
    const lastId = ctx.get('last-event-id') || (typeof ctx.query.lastEventId === 'string' ? ctx.query.lastEventId : '')
    const missed = lastId ? hub.since(lastId) : undefined
    if (missed) {
      for (const e of missed) send(e)
    } else {
      const head = hub.lastId()
      if (lastId) stream.write(frame({ id: head, event: 'reset', data: JSON.stringify({ lastEventId: lastId, reason: 'the events after it are no longer kept; the state now follows' }) }))
      for (const s of hub.snapshot(types)) stream.write(frame({ id: head, ...s }))
    }
    const off = hub.on(send)
    const keepalive = setInterval(() => stream.write(': keepalive\n\n'), config.keepaliveMs ?? 15_000)
    const stop = () => { clearInterval(keepalive); off(); release() }
    stream.on('close', stop)
    ctx.req.on('close', () => { stop(); stream.end() })
    ctx.req.socket.setNoDelay(true)
    ctx.body = stream
  }
}
