// What the page knows of the LAN: one Source per node (this one and the peers it announces), each
// fed by that node's events stream (GET /api/v1/events) and, for tasks, its task list.
import { getJson, type Target } from './net.js'
import type { CopyStatus, JobView } from '../../src/farm/views.js'
export type { CopyStatus, JobView }

export interface TaskView {
  id: string
  service: string
  status: string
  ctime: number
  etime?: number
  out?: string
  progress?: string
  percent?: number
  printer?: string
  error?: string
  exitCode?: number | null
}

export interface StageView {
  n: number
  service: string
  /** waiting, placing, then its task's status */
  state: string
  node?: string
  nodeId?: string
  nodeUrl?: string
  task?: string
  printer?: string
  percent?: number
  progress?: string
  error?: string
  out?: string
  started?: number
  ended?: number
}
/** A pipeline this node drives, as GET /api/v1/pipelines/:id and its `pipeline` events show it. */
export interface PipelineView {
  id: string
  status: 'running' | 'complete' | 'failed' | 'cancelled'
  ctime: number
  etime?: number
  stage: number
  stages: StageView[]
  queue?: { group?: string, printer?: string, copies: number, job?: string }
  cancelling?: boolean
  error?: string
}

export type Heaters = Record<string, { actual: number, target: number }>
export interface PrinterView {
  name: string
  port?: string
  /** the serial link's state (printing, paused, halted, ...) */
  state: string
  /** the farm's: idle, printing, paused, finished, error, disconnected */
  farmState?: string
  groups?: string[]
  heaters?: Heaters
  print?: { file?: string, task?: string, percent?: number, elapsedMs?: number, remainingMs?: number }
  lastError?: string
  error?: string
  history?: Array<[number, Heaters]>
  job?: { file?: string, name?: string }
}

export interface NodeInfo {
  id: string
  name: string
  host: string
  services: string[]
  version: string
  load?: number
  slots?: number
  free?: number
  queue?: number
  tokenRequired: boolean
  /** the printers as the node's record or meta lists them (state: the farm's) */
  printers: Array<{ name: string, state: string, groups?: string[] }>
}

export const FINAL = new Set(['complete', 'failed', 'cancelled'])
const HISTORY_MS = 10 * 60_000

export class Source implements Target {
  readonly printers = new Map<string, PrinterView>()
  readonly history = new Map<string, Array<[number, Heaters]>>()
  readonly tasks = new Map<string, TaskView>()
  /** the pipelines the node drives (a peer's: while the LAN's tasks are shown) */
  readonly pipelines = new Map<string, PipelineView>()
  pipelinesLoaded = false
  /** an older node refuses `events=...,pipeline`: its pipelines are not followed */
  private noPipelineEvents = false
  /** connected, connecting again, or not reachable */
  link: 'live' | 'connecting' | 'down' = 'connecting'
  es?: EventSource
  private streamTypes = ''
  private touched = new Set<string>()
  tasksLoaded = false
  /** the node's farm queue in order; undefined until read */
  jobs?: JobView[]
  queueAsked = false
  /** the groups (`*`: all) whose jobs the node holds back, as far as the page knows */
  readonly paused = new Set<string>()
  private queueTimer?: ReturnType<typeof setTimeout>

  constructor (public info: NodeInfo, public base: string, readonly self: boolean) {}

  get name (): string { return this.info.name }
  get id (): string { return this.info.id }

  /** which events this page needs from the node: all from its own, from peers what it shows */
  types (lan: { tasks: boolean, tracked: Set<string> }): string[] {
    if (this.self) return []
    const t: string[] = []
    if (this.info.printers.length > 0) t.push('printer')
    if (lan.tasks || lan.tracked.has(this.id)) t.push('task')
    if (lan.tasks && !this.noPipelineEvents) t.push('pipeline')
    if (this.followsQueue(lan)) t.push('queue')
    return t
  }

  /** whether the page shows the node's farm queue: this node's, a farm node's (printers in groups), one a job was sent to */
  followsQueue (lan: { tracked: Set<string> }): boolean {
    return this.self || lan.tracked.has(this.id) || this.info.printers.some((p) => (p.groups?.length ?? 0) > 0)
  }

  async loadQueue (): Promise<void> {
    const r = await getJson<JobView[]>(this, '/api/v1/queue')
    if (!Array.isArray(r.body)) return
    this.jobs = r.body
    // a held job tells that its group (or, for a job sent to one printer, the whole queue) is held; one not held, that neither is
    for (const j of r.body) {
      if (!j.paused) { this.paused.delete('*'); if (j.group) this.paused.delete(j.group) }
    }
    for (const j of r.body) if (j.paused && !this.paused.has('*')) this.paused.add(j.group ?? '*')
  }

  /** reads the queue again soon, once for many changes (a `queue` or `reset` event) */
  queueChanged (then: () => void): void {
    clearTimeout(this.queueTimer)
    this.queueTimer = setTimeout(() => { this.loadQueue().then(then, () => {}) }, 150)
  }

  /** a `queue` event's pause or resume */
  pausedChanged (change: string, group?: string): void {
    if (change === 'paused') this.paused.add(group ?? '*')
    else if (group === undefined) this.paused.clear()
    else this.paused.delete(group)
  }

  setPrinter (p: PrinterView): void {
    const h = this.history.get(p.name) ?? []
    if (p.history) h.splice(0, h.length, ...p.history)
    else if (p.heaters && Object.keys(p.heaters).length) {
      const now = Date.now()
      if (!h.length || now - h[h.length - 1][0] >= 2000) h.push([now, p.heaters])
    }
    while (h.length && h[0][0] < Date.now() - HISTORY_MS) h.shift()
    this.history.set(p.name, h)
    const { history: _, ...rest } = p
    this.printers.set(p.name, rest)
  }

  setTask (t: TaskView): void {
    this.touched.add(t.id)
    this.tasks.set(t.id, t)
  }

  private pipelinesTouched = new Set<string>()
  setPipeline (p: PipelineView): void {
    this.pipelinesTouched.add(p.id)
    this.pipelines.set(p.id, p)
  }

  async loadPipelines (): Promise<void> {
    this.pipelinesTouched.clear()
    const r = await getJson<PipelineView[]>(this, '/api/v1/pipelines')
    if (!Array.isArray(r.body)) return
    // one changed by an event meanwhile is newer than the list
    for (const p of r.body) if (!this.pipelinesTouched.has(p.id)) this.pipelines.set(p.id, p)
  }

  async loadTasks (): Promise<void> {
    this.touched.clear()
    const r = await getJson<TaskView[]>(this, '/api/v1/tasks')
    if (!r.body) return
    // a task changed by an event meanwhile is newer than the list
    for (const t of r.body) if (!this.touched.has(t.id)) this.tasks.set(t.id, t)
    this.tasksLoaded = true
  }

  /** (re)opens the events stream when what the page needs from the node changed */
  connect (types: string[], on: Record<string, (data: any, src: Source) => void>, changed: () => void): void {
    const key = types.join(',')
    if (!this.self && types.length === 0) { this.disconnect(); return }
    if (this.es && this.streamTypes === key && this.es.readyState !== EventSource.CLOSED) return
    this.disconnect()
    this.streamTypes = key
    const es = new EventSource(`${this.base}/api/v1/events${key ? `?events=${key}` : ''}`)
    this.es = es
    es.onopen = () => { this.link = 'live'; changed() }
    es.onerror = () => {
      this.link = es.readyState === EventSource.CLOSED ? 'down' : 'connecting'
      changed()
      // refused outright: a node without pipeline events is asked again without them at once;
      // an old node without the stream, later
      if (es.readyState === EventSource.CLOSED && types.includes('pipeline') && !this.noPipelineEvents) {
        this.noPipelineEvents = true
        this.es = undefined
        this.connect(types.filter((t) => t !== 'pipeline'), on, changed)
        return
      }
      if (es.readyState === EventSource.CLOSED) setTimeout(() => { if (this.es === es) { this.es = undefined; this.connect(types, on, changed) } }, 10_000)
    }
    for (const [name, handle] of Object.entries(on)) {
      es.addEventListener(name, (e) => {
        if (this.es !== es) return
        try { handle(JSON.parse((e as MessageEvent).data), this) } catch (err) { console.error(err) }
        changed()
      })
    }
  }

  disconnect (): void {
    this.es?.close()
    this.es = undefined
    this.streamTypes = ''
  }
}

/** A peer as the node's `peer` events carry it. */
export interface PeerEvent {
  change: 'up' | 'update' | 'down'
  peer: { id: string, name: string, host: string, addresses: string[], port: number, record: { version: string, services: string[], load: number, cores: number, slots: number, free: number, queue: number, printers: Array<{ name: string, state: string }>, tokenRequired: boolean } }
}

/** The URL of a peer: its first IPv4 address (the one its answers came from), else its first address. */
export function baseOf (p: PeerEvent['peer']): string {
  const a = p.addresses.find((x) => !x.includes(':')) ?? p.addresses[0] ?? p.host
  return `http://${a.includes(':') ? `[${a}]` : a}:${p.port}`
}

export function infoOf (p: PeerEvent['peer']): NodeInfo {
  const r = p.record
  return {
    id: p.id, name: p.name, host: p.host, services: r.services, version: r.version, load: r.load,
    slots: r.slots, free: r.free, queue: r.queue, tokenRequired: r.tokenRequired, printers: r.printers ?? [],
  }
}
