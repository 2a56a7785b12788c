import { loadavg } from 'node:os'
import type { MdnsStatus } from '../discovery/index.js'
import type { ResolvedService } from '../executors/services.js'
import type { Sandbox } from '../executors/sandbox.js'
import type { Store } from './store.js'
import type { BlobStats } from './blobs.js'
import { VERSION } from '../version.js'

export function formatUptime (sec: number): string {
  const s = Math.floor(sec)
  const p = (n: number) => String(n).padStart(2, '0')
  return `${Math.floor(s / 86400)}d ${p(Math.floor(s / 3600) % 24)}h ${p(Math.floor(s / 60) % 60)}m ${p(s % 60)}s`
}

/** The node's `?service=meta` (and `/api/v1/meta`): what it is, offers and does now. */
export function createMeta (
  config: { nodeId: string, serverName: string, started: number, retentionHours: number, timeoutSec: number, cores: number, slots: number, tokenRequired: boolean },
  deps: {
    services: ResolvedService[], sandbox: Sandbox, store: Store,
    counts: () => { running: number, free: number, queue: number },
    printers: () => unknown[], mdns: () => MdnsStatus,
    /** the content store: bytes, blobs, limit, results, hits */
    blobs?: () => BlobStats,
  },
) {
  const offered = deps.services.filter((s) => s.available).map((s) => s.name)
  return () => {
    const { running, free, queue } = deps.counts()
    return {
      id: config.nodeId,
      cpuLoad: Math.round(loadavg()[0] * 100) / 100,
      maxDataRetention: config.retentionHours,
      serverName: config.serverName,
      services: offered.join(','),
      unavailable: Object.fromEntries(deps.services.filter((s) => !s.available).map((s) => [s.name, s.reason])),
      tasks: deps.store.count(),
      timeout: config.timeoutSec,
      uptime: formatUptime((Date.now() - config.started) / 1000),
      version: `rrcloud ${VERSION}`,
      cores: config.cores,
      slots: config.slots,
      free,
      running,
      queue,
      tokenRequired: config.tokenRequired,
      sandbox: deps.sandbox.mode,
      sandboxNote: deps.sandbox.note,
      printers: deps.printers(),
      // whether other machines can find this node over mDNS, and if not, why
      mdns: deps.mdns(),
      // the content store and result cache (limit 0: off)
      ...(deps.blobs ? { store: deps.blobs() } : {}),
    }
  }
}
