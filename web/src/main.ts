// The dashboard's script: this node's events stream, the peers it announces (and their printers'
// and tasks' streams, as needed), and the sections kept up to date from them.
import { app, changed, onRender, say } from './app.js'
import { byId } from './dom.js'
import { baseOf, infoOf, Source, type NodeInfo, type PeerEvent, type PipelineView, type PrinterView, type TaskView } from './model.js'
import { getJson } from './net.js'
import { initQueue } from './queue.js'
import { initSubmit } from './submit.js'
import { initTasks } from './tasks.js'
import './lan.js'
import './pipelines.js'
import './printers.js'

const handlers: Record<string, (data: any, src: Source) => void> = {
  task: (t: TaskView, src) => src.setTask(t),
  pipeline: (p: PipelineView, src) => src.setPipeline(p),
  printer: (p: PrinterView, src) => src.setPrinter(p),
  stats: (s: { load: number, slots: number, free: number, queue: number }, src) => {
    Object.assign(src.info, { load: s.load, slots: s.slots, free: s.free, queue: s.queue })
  },
  peer: (e: PeerEvent) => {
    const id = e.peer.id
    if (e.change === 'down') {
      app.sources.get(id)?.disconnect()
      app.sources.delete(id)
      return
    }
    const known = app.sources.get(id)
    const base = baseOf(e.peer)
    if (known && known.base === base) known.info = infoOf(e.peer)
    else {
      known?.disconnect()
      app.sources.set(id, new Source(infoOf(e.peer), base, false))
    }
  },
  queue: (q: { change: string, group?: string }, src) => {
    if (q.change === 'paused' || q.change === 'resumed') src.pausedChanged(q.change, q.group)
    src.queueChanged(changed)
  },
  reset: (_data, src) => {
    // events were missed: the state came again with this event; the task list and queue are read again
    src.tasksLoaded = false
    void src.loadTasks().then(changed)
    if (src.self || src.types(app.lan).includes('pipeline')) void src.loadPipelines().then(changed)
    if (src.followsQueue(app.lan)) src.queueChanged(changed)
  },
}

/** each node's stream carries what the page shows of it */
function connectAll (): void {
  for (const src of app.sources.values()) {
    const types = src.types(app.lan)
    src.connect(types, handlers, changed)
    if (types.includes('task') && !src.tasksLoaded) {
      src.tasksLoaded = true
      src.loadTasks().then(changed, () => { src.tasksLoaded = false })
    }
    if (types.includes('pipeline') && !src.pipelinesLoaded) {
      src.pipelinesLoaded = true
      src.loadPipelines().then(changed, () => { src.pipelinesLoaded = false })
    }
    if (types.includes('queue') && !src.queueAsked) {
      src.queueAsked = true
      src.loadQueue().then(changed, () => { src.queueAsked = false })
    }
  }
}

function selfInfo (): NodeInfo {
  const select = byId<HTMLSelectElement>('submit-service')
  return {
    id: document.body.dataset.node ?? 'self', name: document.body.dataset.name ?? location.host, host: location.host,
    services: [...select.options].map((o) => o.value), version: '', tokenRequired: false, printers: [],
  }
}

async function start (): Promise<void> {
  app.self = new Source(selfInfo(), '', true)
  app.sources.set(app.self.id, app.self)
  const q = new URLSearchParams(location.search)
  const id = q.get('id')
  if (id) app.focus = { node: q.get('node') ?? app.self.id, id }
  app.focusPipeline = q.get('pipeline') ?? undefined
  const job = q.get('job')
  if (job) app.focusJob = { node: q.get('node') ?? app.self.id, id: job }
  if (q.get('node')) app.lan.tracked.add(q.get('node')!)
  initTasks()
  initSubmit()
  initQueue()
  onRender(connectAll)
  const meta = await getJson<Record<string, any>>(app.self, '/api/v1/meta')
  if (meta.body) {
    const m = meta.body
    Object.assign(app.self.info, {
      name: m.serverName, version: m.version, services: String(m.services).split(',').filter(Boolean), tokenRequired: m.tokenRequired === true,
      load: m.cores ? m.cpuLoad / m.cores : undefined, slots: m.slots, free: m.free, queue: m.queue,
      printers: (m.printers ?? []).map((p: { name: string, state: string, farmState?: string, groups?: string[] }) => ({ name: p.name, state: p.farmState ?? p.state, groups: p.groups ?? [] })),
    })
    if (m.tokenRequired) say('This node needs a token to change anything; the page asks for it once.')
  }
  // the first task list once the stream is open: a change meanwhile comes as an event
  app.self.connect([], handlers, changed)
  app.self.tasksLoaded = true
  app.self.queueAsked = true
  await Promise.all([app.self.loadTasks(), app.self.loadPipelines(), app.self.loadQueue()])
  changed()
  const peers = await getJson(app.self, '/api/v1/peers')
  app.browsing = peers.status !== 404
  changed()
}

start().catch((e) => say(`The page could not start: ${(e as Error).message}`))
