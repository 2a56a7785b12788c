/**
 * The print farm of a node: its printers' farm states and claims (printers.ts), its queue of jobs
 * and the dispatcher that sends their copies to free printers of the LAN (queue.ts), kept in
 * farm.db (db.ts); the HTTP edges are src/node/farm.ts and src/node/octoprint.ts.
 *
 *   const farm = createFarm({ dataDir, nodeId, nodeName, printers: specs }, { printers, runner, submitLocal, peers, log })
 *   farm.printers.claim('mk3a'); farm.printers.clear('mk3a')
 *   farm.queue.add({ tmpPath, name: 'part.gcode', group: 'mk3', copies: 4, client })
 *   farm.record()        // the printers as the node's mDNS record carries them
 *   await farm.close()
 */
import type { Printer } from '../executors/printer/printer.js'
import type { Peer, PrinterInfo } from '../discovery/index.js'
import { openFarmDb } from './db.js'
import { createFarmPrinters, type FarmPrinterConfig, type FarmPrinters, type RunnerView } from './printers.js'
import { createFarmQueue, type FarmQueue, type RemoteNode } from './queue.js'
import { createRemoteFarm } from './remote.js'

export type { FarmPrinters, FarmState, PrinterView } from './printers.js'
export type { FarmQueue, JobView } from './queue.js'
export { connectionState, octoPrintServices, OCTOPRINT_API, OCTOPRINT_VERSION } from './advertise.js'
export { copyForTask } from './queue.js'

export interface FarmConfig {
  dataDir: string
  nodeId: string
  nodeName: string
  printers: FarmPrinterConfig[]
  /** the node's token, sent to peers (a farm's nodes share one) */
  token?: string
  retentionHours?: number
  /** how long a claim waits for its job (default 120 s) */
  claimMs?: number
  /** how often the queue is looked at (default 3 s) */
  everyMs?: number
}

export interface FarmDeps {
  printers: Map<string, Printer>
  runner: RunnerView
  /** a print task on this node's printer, with the claim; resolves with its id */
  submitLocal: (printer: string, claim: string, file: string, name: string) => Promise<string>
  /** the peers this node sees over mDNS (none without) */
  peers: () => Peer[]
  log: (line: string) => void
}

export interface Farm {
  printers: FarmPrinters
  queue: FarmQueue
  /** this node's printers as its mDNS record carries them */
  record (): PrinterInfo[]
  close (): Promise<void>
}

/** A peer of src/discovery as the queue needs it: its URL and printers. */
export function remoteNode (p: Pick<Peer, 'name' | 'addresses' | 'port' | 'record'>): RemoteNode | undefined {
  const address = p.addresses[0]
  if (!address || !p.record?.id) return undefined
  return {
    id: p.record.id,
    name: p.record.name ?? p.name,
    url: `http://${address.includes(':') ? `[${address}]` : address}:${p.port}`,
    printers: p.record.printers.map((x) => ({ name: x.name, state: x.state, groups: x.groups ?? [] })),
  }
}

export function createFarm (config: FarmConfig, deps: FarmDeps): Farm {
  const db = openFarmDb(config.dataDir)
  const printers = createFarmPrinters({ printers: config.printers, claimMs: config.claimMs }, { db, printers: deps.printers, runner: deps.runner, log: deps.log })
  const queue = createFarmQueue(
    { dataDir: config.dataDir, nodeId: config.nodeId, nodeName: config.nodeName, everyMs: config.everyMs, retentionHours: config.retentionHours },
    {
      db,
      printers,
      peers: () => deps.peers().flatMap((p) => remoteNode(p) ?? []),
      remote: createRemoteFarm({ token: config.token }),
      submitLocal: deps.submitLocal,
      localTask: (id) => {
        try {
          const t = deps.runner.get(id)
          return { status: t.status, ...(t.error ? { error: t.error } : {}) }
        } catch { return undefined }
      },
      log: deps.log,
    },
  )
  // a printer that becomes ready (a clear, a print that ends) may take the next job
  printers.events.on('change', () => queue.kick())
  let closed: Promise<void> | undefined
  return {
    printers,
    queue,
    record: () => printers.list().map((p) => ({ name: p.name, port: p.port, state: p.state, ...(p.groups.length ? { groups: p.groups } : {}) })),
    close () {
      closed ??= (async () => {
        // a look at the queue in progress may wait on a peer: not for long
        await Promise.race([queue.close(), new Promise((resolve) => setTimeout(resolve, 2000).unref())])
        printers.close()
        db.close()
      })()
      return closed
    },
  }
}
