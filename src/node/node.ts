import { createServer, type Server } from 'node:http'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { hostname, loadavg, availableParallelism, totalmem } from 'node:os'
import { basename, join } from 'node:path'
import { createPrinter, type Printer, type PrinterConfig } from '../executors/printer/printer.js'
import { formatTemperatures } from '../executors/print-run.js'
import { once } from 'node:events'
import { builtinServicesDir, confine, resolveAll, type ResolvedService } from '../executors/services.js'
import { probeSandbox, type Limits, type SandboxMode } from '../executors/sandbox.js'
import { DEFAULT_ALLOW, parseCidrs } from './access.js'
import { createOriginPolicy } from './cors.js'
import { createNotifier } from './notifier.js'
import type { Store } from './store.js'
import type { TaskRunner } from './tasks.js'
import { VERSION } from '../version.js'
import { createAdvertiser, createBrowser, type Advertiser, type Browser, type NodeRecord } from '../discovery/index.js'

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
  /** tasks that may wait for a slot before new ones get 503 (default 1000) */
  maxQueue?: number
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

export interface PrinterSpec { name: string; path: string; baudRate?: number; park?: string[] }

/**
 * `mk3=/dev/ttyUSB0@115200`, `/dev/ttyACM0` (named after the device), `mk3=/dev/ttyUSB0`, and
 * options after a comma: `mk3=/dev/ttyUSB0@115200,park=G91;G1 Z10;G90` (G-code a pause runs,
 * commands separated by `;`).
 */
export function parsePrinterSpec (spec: string): PrinterSpec {
  const [port, ...options] = spec.trim().split(',')
  const m = /^(?:([A-Za-z0-9][\w.-]{0,31})=)?(\/[^@\s]+)(?:@(\d{3,7}))?$/.exec(port)
  if (!m) throw new Error(`--printer ${spec}: write NAME=/dev/ttyUSB0[@BAUD][,park=GCODE;GCODE...], e.g. mk3=/dev/ttyUSB0@115200`)
  const p: PrinterSpec = { name: m[1] ?? basename(m[2]), path: m[2], baudRate: m[3] ? Number(m[3]) : undefined }
  for (const option of options) {
    const [key, ...rest] = option.split('=')
    if (key.trim() !== 'park' || !rest.length) throw new Error(`--printer ${spec}: unknown option "${option}"; the only one is park=GCODE;GCODE...`)
    p.park = rest.join('=').split(';').map((c) => c.trim()).filter(Boolean)
  }
  return p
}

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
  close (): Promise<void>
}

/** A node keeps its id across restarts, so that peers and clients can tell it apart from others. */
function nodeIdOf (dataDir: string): string {
  const file = join(dataDir, 'node-id')
  try {
    const id = readFileSync(file, 'utf8').trim()
    if (/^[0-9a-f]{16}$/.test(id)) return id
  } catch {}
  const id = randomBytes(8).toString('hex')
  writeFileSync(file, id + '\n')
  return id
}

export function formatUptime (sec: number): string {
  const s = Math.floor(sec)
  const p = (n: number) => String(n).padStart(2, '0')
  return `${Math.floor(s / 86400)}d ${p(Math.floor(s / 3600) % 24)}h ${p(Math.floor(s / 60) % 60)}m ${p(s % 60)}s`
}

/** Starts a node: store, task runner and HTTP server on the configured port. */
export async function startNode (config: NodeConfig): Promise<RunningNode> {
  const log = config.log ?? (() => {})
  const started = Date.now()
  const slots = config.slots ?? availableParallelism()
  const timeoutSec = config.timeoutSec ?? 1800
  const retentionHours = config.retentionHours ?? 24
  const serverName = config.name ?? hostname()
  const allow = parseCidrs(config.allow ?? DEFAULT_ALLOW)
  const origins = createOriginPolicy({ allow, cors: config.cors, names: [serverName, hostname()] })
  const defaultAllow = !config.allow || [...config.allow].map((c) => c.trim()).sort().join() === [...DEFAULT_ALLOW].sort().join()
  mkdirSync(config.dataDir, { recursive: true })
  const nodeId = nodeIdOf(config.dataDir)
  const printers = new Map<string, Printer>()
  for (const p of config.printers ?? []) {
    if (printers.has(p.name)) throw new Error(`two printers named ${p.name}`)
    printers.set(p.name, createPrinter({ ...config.printerOptions, ...p }))
  }
  const sandbox = probeSandbox(config.sandbox ?? 'auto')
  log(`sandbox: ${sandbox.note}`)
  const limits: Limits = {
    memoryMiB: Math.max(256, Math.floor(totalmem() / 2 ** 20 / slots)),
    cpuSec: timeoutSec * availableParallelism(),
    fileMiB: 4096,
    procs: 256,
    ...config.limits,
  }
  const services = resolveAll([builtinServicesDir, ...(config.serviceDirs ?? [])]).map((s) => {
    if (s.kind === 'printer' && printers.size) return { ...s, available: true, reason: undefined }
    return confine(s, sandbox, config.sandbox ?? 'auto')
  })
  for (const p of printers.values()) {
    // connect early so that meta shows the printer's state; a print connects again if this failed
    p.connect().then(() => log(`printer ${p.name} on ${p.path}: connected`), (e: Error) => log(`printer ${p.name} on ${p.path}: ${e.message}`))
    // a lost printer is looked for again by the printer itself: tell what becomes of it
    p.on('state', (s) => { if (s === 'disconnected' || s === 'halted') log(`printer ${p.name}: ${s}${p.lastError ? `: ${p.lastError}` : ''}`) })
  }
  for (const s of services) log(s.available ? `service ${s.name}: ${s.exe ?? `printers ${[...printers.keys()].join(', ')}`}` : `service ${s.name} not offered: ${s.reason}`)
  const offered = services.filter((s) => s.available).map((s) => s.name)
  const cores = availableParallelism()
  const record = (st: { free: number, queue: number } = { free: slots, queue: 0 }): NodeRecord => ({
    version: VERSION, id: nodeId, name: serverName, services: offered,
    load: Math.round(loadavg()[0] / cores * 100) / 100, cores, slots, free: st.free, queue: st.queue,
    printers: [...printers.values()].map((p) => ({ name: p.name, port: p.path, state: p.state })), tokenRequired: Boolean(config.token),
  })
  // With a known port, mDNS name probing (RFC 6762: three queries 250 ms apart) starts now, while
  // the HTTP side loads; the node is announced once it listens.
  let listening!: (ok: boolean) => void
  const listened = new Promise<boolean>((resolve) => { listening = resolve })
  let advertiser: Advertiser | undefined
  let failed = false
  const advertise = (port: number) => {
    advertiser = createAdvertiser({ name: serverName, port, record: record(), interface: config.interface, announceAfter: listened }, { log })
    advertiser.on('rename', (name, host) => log(`mdns: name taken, now advertising as ${name} on ${host}`))
    advertiser.ready.then(() => log(`mdns: advertising ${advertiser!.name} (${advertiser!.host}:${port})`),
      (e: Error) => { if (!failed) log(`mdns: cannot advertise: ${e.message}`) })
  }
  if (config.mdns === true && config.port !== 0) advertise(config.port)
  // a node that fails to start is never announced, and its advertiser lets the process exit
  const giveUp = async (err: unknown): Promise<never> => {
    failed = true
    listening(false)
    await advertiser?.ready.catch(() => {})
    throw err
  }
  const [{ createApp }, { createStore }, { createTaskRunner }, { awaitingContinue }] =
    await Promise.all([import('./app.js'), import('./store.js'), import('./tasks.js'), import('./uploads.js')]).catch(giveUp)
  let store: Store
  try {
    store = createStore({ dataDir: config.dataDir }, { log })
  } catch (err) {
    return giveUp(err)
  }
  const notifier = createNotifier({ allow: defaultAllow ? undefined : allow }, { log })
  const runner = createTaskRunner(
    { dataDir: config.dataDir, serverName, slots, timeoutSec, retentionHours, services: services.filter((s) => s.available), printers, graceMs: config.graceMs, maxQueue: config.maxQueue, nice: config.nice, sandbox, limits },
    { store, log, notify: (url) => notifier.notify(url) },
  )
  /** free slots and waiting tasks, as meta and the mDNS record show them */
  const counts = () => {
    const st = runner.stats()
    return { running: st.running, free: Math.max(0, slots - st.running), queue: st.queued }
  }
  const printerList = () => [...printers.values()].map((p) => ({
    name: p.name, port: p.path, state: p.state,
    ...(Object.keys(p.temperatures).length ? { temperatures: formatTemperatures(p.temperatures) } : {}),
    ...(p.lastError ? { lastError: p.lastError } : {}),
  }))
  const meta = () => {
    const { running, free, queue } = counts()
    return {
      id: nodeId,
      cpuLoad: Math.round(loadavg()[0] * 100) / 100,
      maxDataRetention: retentionHours,
      serverName,
      services: offered.join(','),
      unavailable: Object.fromEntries(services.filter((s) => !s.available).map((s) => [s.name, s.reason])),
      tasks: store.list().length,
      timeout: timeoutSec,
      uptime: formatUptime((Date.now() - started) / 1000),
      version: `rrcloud ${VERSION}`,
      cores,
      slots,
      free,
      running,
      queue,
      tokenRequired: Boolean(config.token),
      sandbox: sandbox.mode,
      sandboxNote: sandbox.note,
      printers: printerList(),
      // whether other machines can find this node over mDNS, and if not, why
      mdns: advertiser?.status() ?? { working: false, interfaces: [], problem: config.mdns === true ? 'not advertising yet' : 'off (--no-mdns)' },
    }
  }
  /** M112 on a printer of this node, by name or port path; undefined when there is no such printer */
  const estop = (want: string) => {
    const p = [...printers.values()].find((x) => x.name === want || x.path === want)
    if (!p) return undefined
    p.emergencyStop()
    log(`printer ${p.name}: emergency stop (M112) on request`)
    return { name: p.name, port: p.path, state: p.state, sent: 'M112' }
  }
  const timeouts = { ...HTTP_TIMEOUTS, ...config.timeouts }
  const app = createApp(
    {
      dataDir: config.dataDir, allow, origins, token: config.token,
      maxUpload: config.maxUpload ?? 2 ** 30, maxField: config.maxField, keepaliveMs: Math.min(15_000, timeouts.idle / 3),
    },
    { runner, services, meta, peers: () => browser?.peers(), notifierRefusal: (url) => notifier.refusal(url), log, estop },
  )
  const handle = app.callback()
  const server = createServer({
    headersTimeout: timeouts.headers,
    requestTimeout: timeouts.request,
    connectionsCheckingInterval: Math.min(30_000, timeouts.headers / 2),
  }, handle)
  server.timeout = timeouts.idle
  // the app decides before a body is sent: `100 Continue` goes out only when the body is read
  server.on('checkContinue', (req, res) => { awaitingContinue.add(res); handle(req, res) })
  server.listen(config.port, config.host)
  try {
    await once(server, 'listening')
  } catch (err) {
    await runner.close().catch(() => {})
    await notifier.close()
    store.close()
    return giveUp(err)
  }
  const addr = server.address()
  const port = typeof addr === 'object' && addr ? addr.port : config.port
  const host = config.host && config.host !== '0.0.0.0' && config.host !== '::' ? config.host : '127.0.0.1'
  let browser: Browser | undefined
  if (config.mdns === true) {
    if (!advertiser) advertise(port)
    const push = () => advertiser?.update(record(counts()))
    push()
    browser = createBrowser({ interface: config.interface }, { log })
    runner.events.on('stats', push)
    for (const p of printers.values()) p.on('state', push)
    // the load average moves on its own: look at it every few seconds
    const loadTimer = setInterval(push, 3000)
    loadTimer.unref()
    server.once('close', () => clearInterval(loadTimer))
  }
  listening(true)
  let closed: Promise<void> | undefined
  return {
    server,
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    store,
    runner,
    services,
    nodeId,
    advertiser,
    browser,
    close () {
      closed ??= (async () => {
        await Promise.all([advertiser?.close(), browser?.close()])
        server.close()
        server.closeAllConnections()
        // the runner cancels every task at once; printers are made safe meanwhile, without waiting
        // for a line in flight (a heat-up can outlast the service manager's patience)
        const stopping = runner.close()
        await Promise.all([...printers.values()].map((p) => p.close()))
        await stopping
        await notifier.close()
        store.close()
      })()
      return closed
    },
  }
}
