import { createServer, type RequestListener, type Server, type ServerResponse } from 'node:http'
import { mkdirSync, rmSync } from 'node:fs'
import { hostname, loadavg, availableParallelism } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import type { Printer, PrinterConfig } from '../executors/printer/printer.js'
import type { ResolvedService } from '../executors/services.js'
import type { Limits, SandboxMode } from '../executors/sandbox.js'
import { DEFAULT_ALLOW, parseCidrs } from './access.js'
import { createOriginPolicy } from './cors.js'
import { createNotifier } from './notifier.js'
import { createNodeAdvertising, lookAround, type NodeAdvertising } from './advertising.js'
import { nodeIdOf, nodeRecord } from './identity.js'
import { DEFAULT_CACHE_SIZE, type PrinterSpec } from './options.js'
import { createMeta } from './meta.js'
import { resolveOffer } from './offer.js'
import { emergencyStop, listPrinters, openPrinters } from './printers.js'
import { createEventHub, type EventHub } from './events.js'
import { eventStream } from './event-stream.js'
import { dashboard } from './dashboard.js'
import { pageData } from './dashboard-data.js'
import { connectionState, octoPrintServices } from '../farm/advertise.js'
import type { Farm } from '../farm/index.js'
import type { Store } from './store.js'
import type { BlobStore } from './blobs.js'
import type { TaskRunner } from './tasks.js'
import { VERSION } from '../version.js'
import type { Advertiser, Browser, NodeRecord, PrinterInfo } from '../discovery/index.js'

export { formatUptime } from './meta.js'
export { DEFAULT_CACHE_SIZE, parsePrinterSpec, parseSize, type PrinterSpec } from './options.js'

export interface NodeConfig {
  port: number
  host?: string
  dataDir: string
  name?: string
  slots?: number
  timeoutSec?: number
  retentionHours?: number
  allow?: string[]
  /** more origins or host names whose web pages may use the node (`*` any, `null` the opaque origin) */
  cors?: string[]
  token?: string
  /** all the files of one task, bytes (default 1 GiB) */
  maxUpload?: number
  /** one text field, bytes (default 1 MiB; a request's text fields together: twice that) */
  maxField?: number
  /** HTTP timeouts, ms: a connection with no data either way for `idle` is closed (default 120 s) */
  timeouts?: Partial<HttpTimeouts>
  /** tasks that may wait for a slot before new ones wait for a place or get 503 (default 1000) */
  maxQueue?: number
  /** how long a new task waits for a place in a full queue before it gets 503, ms (default 2000; 0: at once) */
  queueWaitMs?: number
  /** CPU niceness of the tools, 0 to 19 (default 0 here; `rrcloud node` gives 10) */
  nice?: number
  /** extra folders of service descriptors, after the built-in one */
  serviceDirs?: string[]
  log?: (line: string) => void
  graceMs?: number
  /** advertise over mDNS and browse peers (default false here; `rrcloud node` turns it on) */
  mdns?: boolean
  /** interface name or IPv4 address for mDNS */
  interface?: string
  /** serial printers attached to this node */
  printers?: PrinterSpec[]
  /** printer settings for every printer (timeouts; tests shorten them) */
  printerOptions?: Partial<PrinterConfig>
  /** how tools are confined (default auto: bwrap when it works here) */
  sandbox?: SandboxMode
  /** limits of every tool run; unset ones get defaults (memory: RAM / slots, file size: 4 GiB, 256 processes) */
  limits?: Limits
  /** bytes the content store may hold (default 2 GiB); 0: no store and no result cache */
  cacheSize?: number
  /** offer only these services (of those whose tools are here) */
  offer?: string[]
  /** other nodes, by base URL, that this node's pipelines may place stages on beside the peers it hears over mDNS */
  peers?: string[]
  /** mDNS already started from the flags (`rrcloud node`: names probed while the node loads) */
  advertising?: NodeAdvertising
  /** the farm queue's timings (tests shorten them): a claim's life, how often the queue is looked at */
  farm?: { claimMs?: number, everyMs?: number }
}

/** How long the HTTP server waits for a client, ms. */
export interface HttpTimeouts {
  /** request line and headers */
  headers: number
  /** the whole request with its body: a backstop for uploads that trickle (a response may take longer) */
  request: number
  /** no data either way; long polls and events streams stay open (keepalive comments) */
  idle: number
}
export const HTTP_TIMEOUTS: HttpTimeouts = { headers: 30_000, request: 3600_000, idle: 120_000 }


export interface RunningNode {
  server: Server
  port: number
  url: string
  store: Store
  runner: TaskRunner
  services: ResolvedService[]
  nodeId: string
  advertiser?: Advertiser
  browser?: Browser
  /** what changes on the node, as GET /api/v1/events streams it */
  events: EventHub
  close (): Promise<void>
}

/** The HTTP server around the app, with the node's timeouts; `100 Continue` is the app's to send. */
function createHttpServer (app: { callback (): RequestListener }, timeouts: HttpTimeouts, awaitingContinue: { add (res: ServerResponse): unknown }): Server {
  const handle = app.callback()
  const server = createServer({
    headersTimeout: timeouts.headers,
    requestTimeout: timeouts.request,
    connectionsCheckingInterval: Math.min(30_000, timeouts.headers / 2),
  }, handle)
  server.timeout = timeouts.idle
  // the app decides before a body is sent: `100 Continue` goes out only when the body is read
  server.on('checkContinue', (req, res) => { awaitingContinue.add(res); handle(req, res) })
  return server
}

/** Starts a node: printers, the services it offers, store, task runner, HTTP server, mDNS. */
export async function startNode (config: NodeConfig): Promise<RunningNode> {
  const log = config.log ?? (() => {})
  const started = Date.now()
  const slots = config.slots ?? availableParallelism()
  const cores = availableParallelism()
  const timeoutSec = config.timeoutSec ?? 1800
  const retentionHours = config.retentionHours ?? 24
  const serverName = config.name ?? hostname()
  const tokenRequired = Boolean(config.token)
  const allow = parseCidrs(config.allow ?? DEFAULT_ALLOW)
  const origins = createOriginPolicy({ allow, cors: config.cors, names: [serverName, hostname()] })
  const defaultAllow = !config.allow || [...config.allow].map((c) => c.trim()).sort().join() === [...DEFAULT_ALLOW].sort().join()
  mkdirSync(config.dataDir, { recursive: true })
  const nodeId = nodeIdOf(config.dataDir)
  const printers = openPrinters(config.printers ?? [], config.printerOptions, log)
  const { sandbox, services, offered, limits } = resolveOffer({ ...config, slots, timeoutSec, printers: [...printers.keys()], offer: config.offer }, log)
  const specs = config.printers ?? []
  let farm: Farm | undefined
  // before the farm is there (the node starting), a printer shows its connection's state
  const printerInfo = (): PrinterInfo[] => farm?.record() ?? [...printers.values()].map((p) => {
    const groups = specs.find((x) => x.name === p.name)?.groups
    return { name: p.name, port: p.path, state: connectionState(p.state), ...(groups?.length ? { groups } : {}) }
  })
  const record = (st?: { free: number, queue: number }) => nodeRecord({ nodeId, serverName, offered, cores, slots, printers: printerInfo, tokenRequired }, st)
  const mdns = config.advertising ?? createNodeAdvertising({
    mdns: config.mdns, port: config.port, name: serverName, interface: config.interface, record: record(),
    services: octoPrintServices(serverName, specs),
  }, { log })
  // a node that fails to start is never announced
  const giveUp = async (err: unknown): Promise<never> => {
    await mdns.abandon()
    throw err
  }
  const [{ createApp }, { createStore }, { createTaskRunner, taskDirs }, { awaitingContinue }, { createBlobStore }, { farmEdge }, { octoPrintEdge }, { createFarm, copyForTask }, { createNodePipelines }] =
    await Promise.all([import('./app.js'), import('./store.js'), import('./tasks.js'), import('./uploads.js'), import('./blobs.js'), import('./farm.js'), import('./octoprint.js'), import('../farm/index.js'), import('./node-pipelines.js')]).catch(giveUp)
  let store: Store
  let blobs: BlobStore
  try {
    store = createStore({ dataDir: config.dataDir }, { log })
  } catch (err) {
    return giveUp(err)
  }
  try {
    blobs = createBlobStore({ dataDir: config.dataDir, maxBytes: config.cacheSize ?? DEFAULT_CACHE_SIZE }, { log })
  } catch (err) {
    store.close()
    return giveUp(err)
  }
  const notifier = createNotifier({ allow: defaultAllow ? undefined : allow }, { log })
  const runner = createTaskRunner(
    { dataDir: config.dataDir, serverName, slots, timeoutSec, retentionHours, services: services.filter((s) => s.available), printers, graceMs: config.graceMs, maxQueue: config.maxQueue, nice: config.nice, sandbox, limits },
    { store, log, notify: (url) => notifier.notify(url), blobs, admit: (t, claim) => farm?.printers.admit(t, claim) },
  )
  const printService = services.find((s) => s.kind === 'printer' && s.available)
  farm = createFarm(
    { dataDir: config.dataDir, nodeId, nodeName: serverName, printers: specs, token: config.token, retentionHours, ...config.farm },
    {
      printers,
      runner,
      peers: () => mdns.browser?.peers() ?? [],
      log,
      async submitLocal (printer, claim, file, name) {
        if (!printService) throw new Error('this node offers no printing')
        const tmp = copyForTask(file, taskDirs(config.dataDir).tmp)
        try {
          const t = await runner.submit({ service: printService.name, inputs: [{ tmpPath: tmp, ext: 'gcode' }], client: '127.0.0.1', printer, claim })
          return t.id
        } catch (e) {
          rmSync(tmp, { force: true })
          throw e
        }
      },
    },
  )
  const nodeFarm = farm
  /** free slots and waiting tasks, as meta and the mDNS record show them */
  const counts = () => {
    const st = runner.stats()
    return { running: st.running, free: Math.max(0, slots - st.running), queue: st.queued }
  }
  /** this node's printers as meta, the events and the page show them: with their groups and farm state */
  const farmPrinters = () => listPrinters(printers).map((p) => ({ ...p, groups: nodeFarm.printers.groups(p.name), farmState: nodeFarm.printers.state(p.name) }))
  const meta = createMeta(
    { nodeId, serverName, started, retentionHours, timeoutSec, cores, slots, tokenRequired },
    { services, sandbox, store, counts, printers: () => farmPrinters(), mdns: () => mdns.status(), blobs: () => blobs.stats() },
  )
  let self = { url: '', port: 0 }
  const pipelines = createNodePipelines(
    { dataDir: config.dataDir, retentionHours, token: config.token, allow, maxBytes: Math.min(blobs.limit, config.maxUpload ?? 2 ** 30), peers: config.peers },
    { blobs, log, notify: (url) => notifier.notify(url), notifierRefusal: (url) => notifier.refusal(url), mdns: () => mdns.browser?.settled(), self: () => ({ ...self, ...record(counts()) }), queue: nodeFarm.queue, services: () => services },
  )
  // the load average, read at most once a second: stats go out on every change of the counts
  let load = { at: 0, value: 0 }
  const loadNow = () => {
    const now = Date.now()
    if (now - load.at >= 1000) load = { at: now, value: loadavg()[0] }
    return load.value
  }
  const timeouts = { ...HTTP_TIMEOUTS, ...config.timeouts }
  const keepaliveMs = Math.min(15_000, timeouts.idle / 3)
  const hub = createEventHub({ nodeId }, {
    runner, printers, printerStatus: farmPrinters,
    stats: () => {
      const { running, free, queue } = counts()
      const load = loadNow()
      return { load: Math.round(load / cores * 100) / 100, cpuLoad: Math.round(load * 100) / 100, cores, slots, free, running, queue }
    },
  })
  const app = createApp(
    {
      dataDir: config.dataDir, allow, origins, token: config.token,
      maxUpload: config.maxUpload ?? 2 ** 30, maxField: config.maxField, keepaliveMs, queueWaitMs: config.queueWaitMs,
    },
    {
      runner, services, meta, peers: () => mdns.browser?.settled(), notifierRefusal: (url) => notifier.refusal(url), log, estop: (want) => emergencyStop(printers, want, log), blobs,
      ahead: [lookAround(() => mdns.browser), eventStream(hub, { token: config.token, keepaliveMs }), dashboard({ data: () => pageData(meta(), runner.list(), pipelines.views()) })],
      edges: [
        farmEdge({ nodeName: serverName, printers: nodeFarm.printers, queue: nodeFarm.queue, log }),
        pipelines.edge,
        ...(printers.size ? [octoPrintEdge({
          dataDir: config.dataDir, nodeName: serverName, token: config.token, retentionHours, printers: nodeFarm.printers, queue: nodeFarm.queue, log,
          temperatures: (name) => printers.get(name)?.temperatures ?? {},
        })] : []),
      ],
    },
  )
  const server = createHttpServer(app, timeouts, awaitingContinue)
  server.listen(config.port, config.host)
  try {
    await once(server, 'listening')
  } catch (err) {
    await pipelines.close()
    hub.close()
    await nodeFarm.close()
    await runner.close().catch(() => {})
    await notifier.close()
    store.close()
    blobs.close()
    return giveUp(err)
  }
  const addr = server.address()
  const port = typeof addr === 'object' && addr ? addr.port : config.port
  const host = config.host && config.host !== '0.0.0.0' && config.host !== '::' ? config.host : '127.0.0.1'
  mdns.listening(port, () => record(counts()))
  self = { url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`, port }
  pipelines.start()
  if (mdns.browser) hub.watchPeers(mdns.browser)
  // the farm's changes on the events stream: a job placed or ended, the queue reordered or paused, a bed cleared
  // the pipelines this node drives: each change once written, as GET /api/v1/pipelines/:id shows it
  pipelines.onChange((shown, full) => hub.publish('pipeline', shown, full))
  nodeFarm.queue.events.on('job', (job: { id: string }) => hub.publish('queue', { change: 'job', id: job.id }))
  nodeFarm.queue.events.on('change', (c: Record<string, unknown>) => hub.publish('queue', c))
  nodeFarm.printers.events.on('change', (name: string) => hub.printerChanged(name))
  if (config.mdns === true) {
    runner.events.on('stats', mdns.update)
    for (const p of printers.values()) p.on('state', mdns.update)
    nodeFarm.printers.events.on('change', mdns.update)
    // a peer that comes, or whose printer becomes ready, may take a job of the queue
    mdns.browser?.on('up', nodeFarm.queue.kick)
    mdns.browser?.on('update', nodeFarm.queue.kick)
  }
  let closed: Promise<void> | undefined
  return {
    server,
    port,
    url: self.url,
    store,
    runner,
    services,
    nodeId,
    advertiser: mdns.advertiser,
    browser: mdns.browser,
    events: hub,
    close () {
      closed ??= (async () => {
        // pipelines stop being driven, as they are: the next start resumes them
        await pipelines.close()
        hub.close()
        // no job of the queue is sent anywhere from now on
        const queueStopped = nodeFarm.queue.close()
        await mdns.close()
        server.close()
        server.closeAllConnections()
        // the runner cancels every task at once; printers are made safe meanwhile, without waiting
        // for a line in flight (a heat-up can outlast the service manager's patience)
        const stopping = runner.close()
        await Promise.all([...printers.values()].map((p) => p.close()))
        await stopping
        await Promise.race([queueStopped, new Promise((resolve) => setTimeout(resolve, 2000).unref())])
        // after the runner: how the prints ended is what the beds hold
        await nodeFarm.close()
        await notifier.close()
        store.close()
        blobs.close()
      })()
      return closed
    },
  }
}
