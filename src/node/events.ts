// The node's events: what changes on it (tasks, pipelines, printers, load and slots, peers, the farm queue),
// kept in a bounded ring so that a client that reconnects gets what it missed. GET /api/v1/events
// (eventsEdge below) streams them as server-sent events; see docs/http-api.md.
import type { EventEmitter } from 'node:events'
import type { Browser, Peer } from '../discovery/index.js'
import type { Printer } from '../executors/printer/printer.js'
import type { Temperatures } from '../executors/printer/protocol.js'
import { FINAL, type Task } from './task.js'
import { taskView } from './render.js'

/** Event names; `queue` is the farm queue's and stays silent on a node without one; `pipeline` the pipelines this node drives. */
export const EVENT_TYPES = ['task', 'pipeline', 'printer', 'peer', 'stats', 'queue'] as const
export type EventType = typeof EVENT_TYPES[number]

export interface HubEvent {
  /** `<boot>-<seq>`: boot tells this run of the node from an earlier one */
  id: string
  seq: number
  event: EventType
  /** the JSON text sent */
  data: string
  /** the same with what only token holders see (a task's notifier), when it differs */
  full?: string
}

export interface Snapshot { event: EventType, data: string }

export interface EventHubConfig {
  /** this node's id: its own mDNS advertisement is not a peer */
  nodeId: string
  /** events kept for clients that reconnect (default 1000) */
  capacity?: number
  /** how often the load is looked at, ms (default 5000) */
  statsEveryMs?: number
  /** printer events per printer at most every this many ms (default 500) */
  printerEveryMs?: number
  /** temperature history kept per printer, ms (default 10 minutes) */
  historyMs?: number
}

export interface EventHubDeps {
  runner: { events: EventEmitter, list (): Task[] }
  printers: Map<string, Printer>
  /** the printers as the node shows them (meta, /api/v1/printers), by name */
  printerStatus: () => Array<Record<string, unknown> & { name: string }>
  /** load and slots as meta shows them */
  stats: () => Record<string, unknown>
}

export interface EventHub {
  /** adds an event (the farm queue publishes `queue` this way) */
  publish (event: EventType, data: unknown, full?: unknown): HubEvent
  /** the events after `lastId`, or undefined when they are no longer kept (or the id is of another run) */
  since (lastId: string): HubEvent[] | undefined
  /** the state now, as events without ids: stats, each printer, each peer */
  snapshot (types: ReadonlySet<EventType>): Snapshot[]
  /** the id of the newest event (`<boot>-0` before the first) */
  lastId (): string
  /** a printer's state changed in a way its serial events do not show (a farm state) */
  printerChanged (name: string): void
  /** follows a discovery browser's peers (the node starts browsing once it listens) */
  watchPeers (browser: Browser & { hold?: () => () => void }): void
  /** a subscriber to peer events is there: the browser runs until the returned function is called */
  holdPeers (): () => void
  on (listener: (e: HubEvent) => void): () => void
  close (): void
}

type Heaters = Record<string, { actual: number, target: number }>
const heaters = (t: Temperatures): Heaters =>
  Object.fromEntries(Object.entries(t).map(([k, v]) => [k, { actual: v.actual, target: v.target }]))

/** A peer as events show it: what its record says, without the times that change on every answer. */
export const peerView = (p: Peer) => ({ id: p.record.id, name: p.record.name ?? p.name, instance: p.name, host: p.host, addresses: p.addresses, port: p.port, record: p.record })

/**
 * A task's event, its text made when it is first read (by a stream, or for a client that
 * reconnects): a node with no one following its events writes none. The task is a record as
 * committed, never changed after.
 */
function taskEvent (id: string, seq: number, t: Task): HubEvent {
  let data: string | undefined
  let full: string | null | undefined
  return {
    id,
    seq,
    event: 'task',
    get data () { return (data ??= JSON.stringify(taskView(t))) },
    get full () {
      if (full === undefined) {
        const text = t.notifier ? JSON.stringify(taskView(t, { notifier: true })) : undefined
        full = text !== undefined && text !== this.data ? text : null
      }
      return full ?? undefined
    },
  }
}

export function createEventHub (config: EventHubConfig, deps: EventHubDeps): EventHub {
  const capacity = config.capacity ?? 1000
  const boot = Date.now().toString(36)
  const ring: HubEvent[] = []
  let seq = 0
  const listeners = new Set<(e: HubEvent) => void>()
  const stops: Array<() => void> = []
  let closed = false

  const add = (e: HubEvent): HubEvent => {
    ring.push(e)
    if (ring.length > capacity) ring.shift()
    for (const l of listeners) l(e)
    return e
  }
  const publish = (event: EventType, data: unknown, full?: unknown): HubEvent => {
    const text = JSON.stringify(data)
    const fullText = full === undefined ? undefined : JSON.stringify(full)
    return add({ id: `${boot}-${++seq}`, seq, event, data: text, ...(fullText !== undefined && fullText !== text ? { full: fullText } : {}) })
  }

  // --- tasks, and which task prints on which printer ---
  const printing = new Map<string, string>()
  for (const t of deps.runner.list()) if (t.printer && !FINAL.has(t.status) && t.status !== 'queued') printing.set(t.printer, t.id)
  const onTask = (t: Task) => {
    if (closed) return
    add(taskEvent(`${boot}-${++seq}`, seq, t))
    if (!t.printer) return
    const was = printing.get(t.printer)
    if ((t.status === 'busy' || t.status === 'paused') && was !== t.id) {
      printing.set(t.printer, t.id)
      printerChanged(t.printer)
    } else if (FINAL.has(t.status) && was === t.id) {
      printing.delete(t.printer)
      printerChanged(t.printer)
    }
  }
  deps.runner.events.on('task', onTask)
  stops.push(() => deps.runner.events.off('task', onTask))

  // --- load and slots ---
  let lastStats = ''
  const statsNow = () => {
    if (closed) return
    const text = JSON.stringify(deps.stats())
    if (text === lastStats) return
    lastStats = text
    add({ id: `${boot}-${++seq}`, seq, event: 'stats', data: text })
  }
  deps.runner.events.on('stats', statsNow)
  stops.push(() => deps.runner.events.off('stats', statsNow))
  // the load average moves on its own
  const statsTimer = setInterval(statsNow, config.statsEveryMs ?? 5000)
  statsTimer.unref()
  stops.push(() => clearInterval(statsTimer))

  // --- printers: state, print progress, temperatures with their recent history ---
  const historyMs = config.historyMs ?? 10 * 60_000
  const history = new Map<string, Array<[number, Heaters]>>()
  const printerView = (name: string, withHistory = false) => {
    const p = deps.printers.get(name)
    const status = deps.printerStatus().find((s) => s.name === name) ?? (p ? { name, port: p.path, state: p.state } : { name })
    const prog = p?.progress
    const task = printing.get(name)
    const percent = prog?.percent ?? 0
    return {
      ...status,
      heaters: p ? heaters(p.temperatures) : {},
      ...(prog
        ? {
            print: {
              file: prog.file.split('/').pop(),
              ...(task ? { task } : {}),
              percent,
              linesSent: prog.linesSent,
              elapsedMs: prog.elapsedMs,
              // as the bytes go so far; a first guess, not the slicer's estimate
              ...(percent >= 1 && percent < 100 ? { remainingMs: Math.round(prog.elapsedMs * (100 - percent) / percent) } : {}),
            },
          }
        : task ? { print: { task } } : {}),
      ...(withHistory ? { history: history.get(name) ?? [] } : {}),
    }
  }
  const printerEveryMs = config.printerEveryMs ?? 500
  const lastPrinterAt = new Map<string, number>()
  const printerTimers = new Map<string, NodeJS.Timeout>()
  function printerChanged (name: string) {
    if (closed || printerTimers.has(name)) return
    const wait = Math.max(0, (lastPrinterAt.get(name) ?? -Infinity) + printerEveryMs - Date.now())
    printerTimers.set(name, setTimeout(() => {
      printerTimers.delete(name)
      if (closed) return
      lastPrinterAt.set(name, Date.now())
      publish('printer', printerView(name))
    }, wait))
  }
  for (const p of deps.printers.values()) {
    const changed = () => printerChanged(p.name)
    const onTemperatures = (t: Temperatures) => {
      const h = history.get(p.name) ?? []
      const now = Date.now()
      // one sample every 2 s at most is enough for a graph of minutes
      if (!h.length || now - h[h.length - 1][0] >= 2000) h.push([now, heaters(t)])
      while (h.length && h[0][0] < now - historyMs) h.shift()
      history.set(p.name, h)
      changed()
    }
    p.on('state', changed)
    p.on('progress', changed)
    p.on('temperatures', onTemperatures)
    stops.push(() => { p.off('state', changed); p.off('progress', changed); p.off('temperatures', onTemperatures) })
  }
  stops.push(() => { for (const t of printerTimers.values()) clearTimeout(t) })

  // --- peers ---
  let browser: (Browser & { hold?: () => () => void }) | undefined
  const others = (p: Peer) => p.record.id !== config.nodeId

  return {
    publish,
    since (lastId) {
      const m = /^([0-9a-z]+)-(\d+)$/.exec(lastId.trim())
      if (!m || m[1] !== boot) return undefined
      const after = Number(m[2])
      if (after > seq) return undefined
      const first = ring.length ? ring[0].seq : seq + 1
      // the next event the client needs is gone from the ring
      if (after + 1 < first) return undefined
      return ring.filter((e) => e.seq > after)
    },
    snapshot (types) {
      const out: Snapshot[] = []
      if (types.has('stats')) out.push({ event: 'stats', data: JSON.stringify(deps.stats()) })
      if (types.has('printer')) for (const name of deps.printers.keys()) out.push({ event: 'printer', data: JSON.stringify(printerView(name, true)) })
      if (types.has('peer') && browser) {
        for (const p of browser.peers().filter(others)) out.push({ event: 'peer', data: JSON.stringify({ change: 'up', peer: peerView(p) }) })
      }
      return out
    },
    lastId: () => `${boot}-${seq}`,
    printerChanged,
    holdPeers: () => browser?.hold?.() ?? (() => {}),
    watchPeers (b) {
      if (closed || browser) return
      browser = b
      const up = (p: Peer) => { if (others(p)) publish('peer', { change: 'up', peer: peerView(p) }) }
      const update = (p: Peer) => { if (others(p)) publish('peer', { change: 'update', peer: peerView(p) }) }
      const down = (p: Peer, reason: string) => { if (others(p)) publish('peer', { change: 'down', reason, peer: peerView(p) }) }
      b.on('up', up)
      b.on('update', update)
      b.on('down', down)
      stops.push(() => { b.off('up', up); b.off('update', update); b.off('down', down) })
    },
    on (listener) {
      listeners.add(listener)
      return () => { listeners.delete(listener) }
    },
    close () {
      if (closed) return
      closed = true
      for (const s of stops.splice(0)) s()
      listeners.clear()
    },
  }
}
