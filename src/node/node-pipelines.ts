import type { BlockList } from 'node:net'
import { join } from 'node:path'
import type { Peer, NodeRecord } from '../discovery/index.js'
import type { BlobStore } from './blobs.js'
import type { EdgeTools } from './app.js'
import type Router from '@koa/router'
import { createBlobPuller } from './blob-pull.js'
import { refusedAddress } from './notifier.js'
import { pipelineEdge } from './pipelines.js'
import { createPipelines, type Pipelines } from '../pipeline/driver.js'
import { createPeerView, fromRecord } from '../pipeline/peers.js'

export interface NodePipelines {
  pipelines: Pipelines
  /** the routes of pipelines and of blobs pulled from other nodes: an edge of the app */
  edge: (tools: EdgeTools) => Router
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
    mdns: () => Peer[] | undefined
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
  const pipelines = createPipelines(
    { dataDir: config.dataDir, retentionHours: config.retentionHours, token: config.token },
    {
      view,
      self: () => { const s = deps.self(); return { id: s.id, name: s.name ?? s.id, url: s.url, port: s.port } },
      blobs: deps.blobs,
      log: deps.log,
      notify: deps.notify,
      notifierRefusal: deps.notifierRefusal,
    },
  )
  return {
    pipelines,
    edge: pipelineEdge({ pipelines, puller, token: config.token }),
    start: () => pipelines.start(),
    close: () => pipelines.close(),
  }
}
