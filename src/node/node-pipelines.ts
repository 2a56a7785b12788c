import { rmSync } from 'node:fs'
import type { BlockList } from 'node:net'
import { join } from 'node:path'
import type { Peer, NodeRecord } from '../discovery/index.js'
import type { BlobStore } from './blobs.js'
import type { ServiceDescriptor } from '../executors/services.js'
import type { EdgeTools } from './app.js'
import type Router from '@koa/router'
import { createBlobPuller } from './blob-pull.js'
import { refusedAddress } from './notifier.js'
import { pipelineEdge } from './pipelines.js'
import { createPipelines, type PipelineQueue, type Pipelines } from '../pipeline/driver.js'
import { notGcode } from '../executors/print-run.js'
import { copyForTask, type FarmQueue } from '../farm/queue.js'
import { createPeerView, fromRecord } from '../pipeline/peers.js'
import { pipelineView, type Pipeline } from '../pipeline/pipeline.js'

export interface NodePipelines {
  pipelines: Pipelines
  /** the routes of pipelines and of blobs pulled from other nodes: an edge of the app */
  edge: (tools: EdgeTools) => Router
  /** the pipelines as GET /api/v1/pipelines shows them (without notifiers) */
  views (): Array<Record<string, unknown>>
  /** every change of a pipeline, once written: as GET /api/v1/pipelines/:id shows it, and with its notifier when it has one */
  onChange (listener: (shown: Record<string, unknown>, full?: Record<string, unknown>) => void): void
  /** drives the pipelines left running at the last stop; call once the node listens */
  start (): void
  close (): Promise<void>
}

/**
 * The node's pipelines: the driver (src/pipeline), its view of the nodes (itself, mDNS peers,
 * --peer), and the puller that brings another node's blob into this one's store.
 */
export function createNodePipelines (
  config: { dataDir: string, retentionHours: number, token?: string, allow: BlockList, maxBytes: number, peers?: string[] },
  deps: {
    blobs: BlobStore, log: (line: string) => void, notify: (url: string) => void
    notifierRefusal?: (url: string) => string | undefined
    /** the peers heard over mDNS, once the LAN has answered (undefined without mDNS) */
    mdns: () => Promise<Peer[]> | Peer[] | undefined
    /** every service descriptor, offered here or not: a pipeline sent as a form names its stages' services */
    services: () => ServiceDescriptor[]
    /** the node's farm queue: a pipeline's last output may become a job of it */
    queue?: FarmQueue
    /** this node's record and how it is reached from here (once it listens) */
    self: () => NodeRecord & { url: string, port: number }
  },
): NodePipelines {
  const puller = createBlobPuller({ allow: config.allow, tmpDir: join(config.dataDir, 'tasks', 'tmp'), maxBytes: config.maxBytes }, { blobs: deps.blobs, log: deps.log })
  const view = createPeerView({ statics: config.peers, token: config.token }, {
    self: () => { const s = deps.self(); return fromRecord(s, s.url, { local: true }) },
    mdns: deps.mdns,
    refused: (address) => refusedAddress(address, config.allow),
  })
  const tmpDir = join(config.dataDir, 'tasks', 'tmp')
  const farmQueue = deps.queue
  const queue: PipelineQueue | undefined = farmQueue && {
    check: (to) => farmQueue.check(to),
    async add (to, out, ctx) {
      // the output is on the node of the last stage (or one that fetched it): brought here first
      let last: Error | undefined
      for (const h of out.holders) {
        if (deps.blobs.file(out.sha256)) break
        ctx.signal.throwIfAborted()
        try { await puller.pull(out.sha256, h.url, ctx.token) } catch (e) { last = e as Error }
      }
      const file = deps.blobs.file(out.sha256)
      if (!file) throw new Error(`no node that holds it answers${last ? ` (${last.message})` : ''}`)
      const why = notGcode(file)
      if (why) throw new Error(`it is not G-code: ${why}`)
      const tmp = copyForTask(file, tmpDir)
      try {
        return farmQueue.add({ tmpPath: tmp, name: out.name, copies: to.copies, client: ctx.client, ...(to.group !== undefined ? { group: to.group } : { printer: to.printer! }) }).id
      } catch (e) {
        rmSync(tmp, { force: true })
        throw e
      }
    },
  }
  const pipelines = createPipelines(
    { dataDir: config.dataDir, retentionHours: config.retentionHours, token: config.token },
    {
      view,
      self: () => { const s = deps.self(); return { id: s.id, name: s.name ?? s.id, url: s.url, port: s.port } },
      blobs: deps.blobs,
      log: deps.log,
      notify: deps.notify,
      notifierRefusal: deps.notifierRefusal,
      queue,
    },
  )
  return {
    pipelines,
    edge: pipelineEdge({ pipelines, puller, token: config.token, blobs: deps.blobs, services: deps.services, log: deps.log }),
    views: () => pipelines.list().map((p) => pipelineView(p)),
    onChange (listener) {
      pipelines.events.on('pipeline', (p: Pipeline) => listener(pipelineView(p), p.notifier ? pipelineView(p, { notifier: true }) : undefined))
    },
    start: () => pipelines.start(),
    close: () => pipelines.close(),
  }
}
