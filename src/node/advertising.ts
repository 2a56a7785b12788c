import { mkdirSync } from 'node:fs'
import type { Middleware } from 'koa'
import { availableParallelism, hostname } from 'node:os'
import { createAdvertiser, createOnDemandBrowser, type Advertiser, type OnDemandBrowser, type MdnsStatus, type NodeRecord, type ServiceInstance } from '../discovery/index.js'
import { octoPrintServices } from '../farm/advertise.js'
import { nodeIdOf, nodeRecord } from './identity.js'
import type { PrinterSpec } from './options.js'

/** per core: what the scheduler makes of a load this much smaller or larger is not worth a packet */
const LOAD_STEP = 0.1

export interface NodeAdvertising {
  readonly advertiser?: Advertiser
  /** the node's view of its peers: it browses while the view is used (see on-demand.ts), from the time it listens */
  readonly browser?: OnDemandBrowser
  /** the node listens on `port`: announce it, and keep its record as `record()` says */
  listening (port: number, record: () => NodeRecord): void
  /** the record changed (load, slots, printers): re-announce it */
  update (): void
  /** the node did not start: it is never announced, and the advertiser lets the process exit */
  abandon (): Promise<void>
  /** whether other machines can find this node over mDNS, and if not, why */
  status (): MdnsStatus
  close (): Promise<void>
}

/**
 * The node's mDNS side: with a known port, name probing (RFC 6762: three queries 250 ms apart)
 * starts at once, while the HTTP side loads; the node is announced once it listens.
 */
export function createNodeAdvertising (
  config: { mdns?: boolean, port: number, name: string, interface?: string, record: NodeRecord, services?: ServiceInstance[] },
  deps: { log: (line: string) => void },
): NodeAdvertising {
  const { log } = deps
  let announce!: (ok: boolean) => void
  const listened = new Promise<boolean>((resolve) => { announce = resolve })
  let advertiser: Advertiser | undefined
  let browser: OnDemandBrowser | undefined
  let current = () => config.record
  let failed = false
  let loadTimer: NodeJS.Timeout | undefined
  const advertise = (port: number) => {
    const a = advertiser = createAdvertiser({ name: config.name, port, record: current(), interface: config.interface, announceAfter: listened, services: config.services }, { log })
    a.on('rename', (name, host) => log(`mdns: name taken, now advertising as ${name} on ${host}`))
    a.ready.then(() => log(`mdns: advertising ${a.name} (${a.host}:${port})`),
      (e: Error) => { if (!failed) log(`mdns: cannot advertise: ${e.message}`) })
  }
  if (config.mdns === true && config.port !== 0) advertise(config.port)
  // the load average drifts on its own: a change of less than LOAD_STEP alone is not announced
  // (free slots, the queue and printers are, at once, with the load last announced)
  let announcedLoad: number | undefined
  const update = () => {
    if (!advertiser) return
    const r = current()
    if (announcedLoad === undefined || Math.abs(r.load - announcedLoad) >= LOAD_STEP) announcedLoad = r.load
    advertiser.update({ ...r, load: announcedLoad })
  }
  let closed: Promise<void> | undefined
  return {
    get advertiser () { return advertiser },
    get browser () { return browser },
    listening (port, record) {
      current = record
      if (config.mdns === true) {
        if (!advertiser) advertise(port)
        update()
        browser = createOnDemandBrowser({ interface: config.interface }, { log })
        // the load average moves on its own: look at it every few seconds
        loadTimer = setInterval(update, 3000)
        loadTimer.unref()
      }
      announce(true)
    },
    update,
    async abandon () {
      failed = true
      announce(false)
      await advertiser?.ready.catch(() => {})
    },
    status: () => advertiser?.status() ?? { working: false, interfaces: [], problem: config.mdns === true ? 'not advertising yet' : 'off (--no-mdns)' },
    close () {
      closed ??= (async () => {
        clearInterval(loadTimer)
        await Promise.all([advertiser?.close(), browser?.close()])
      })()
      return closed
    },
  }
}

/** requests that may hand work to peers: a farm job (a group or printer may be on a peer), a pipeline, an OctoPrint upload */
const FOR_PEERS = /^(\/octoprint\/(printer|group)\/[^/]+)?\/api\/(v1\/(queue|pipelines)\/?$|files\/)/

/**
 * Work that may go to peers is looked at with the LAN's answers: a node that was not browsing
 * (nothing used its view for a while) asks the LAN first, and the request waits for the answers
 * (see OnDemandBrowser.settled; at once when it browses already).
 */
export function lookAround (browser: () => OnDemandBrowser | undefined): Middleware {
  return async (ctx, next) => {
    if (ctx.method === 'POST' && FOR_PEERS.test(ctx.path)) await browser()?.settled()
    return next()
  }
}

/**
 * mDNS for `rrcloud node`, started from its flags alone before the rest of the node loads: the
 * names are probed meanwhile (750 ms), and startNode() takes it over (`advertising`) with the full
 * record. Undefined when mDNS is off, the port is not known yet (0), or the data folder cannot be
 * made (the node then says why as it starts).
 */
export function advertiseEarly (
  config: { mdns: boolean, port: number, dataDir: string, name?: string, interface?: string, slots?: number, token?: string, printers: PrinterSpec[] },
  deps: { log: (line: string) => void },
): NodeAdvertising | undefined {
  if (!config.mdns || config.port === 0) return undefined
  let nodeId: string
  try {
    mkdirSync(config.dataDir, { recursive: true })
    nodeId = nodeIdOf(config.dataDir)
  } catch {
    return undefined
  }
  const serverName = config.name ?? hostname()
  const cores = availableParallelism()
  // the services and the printers' states are known once the node has loaded: listening() gives them
  const record = nodeRecord({
    nodeId, serverName, offered: [], cores, slots: config.slots ?? cores, tokenRequired: Boolean(config.token),
    printers: () => config.printers.map((p) => ({ name: p.name, port: p.path, state: 'disconnected', ...(p.groups?.length ? { groups: p.groups } : {}) })),
  })
  return createNodeAdvertising({
    mdns: true, port: config.port, name: serverName, interface: config.interface, record,
    services: octoPrintServices(serverName, config.printers),
  }, deps)
}
