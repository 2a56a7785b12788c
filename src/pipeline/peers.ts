import type { Peer, NodeRecord } from '../discovery/index.js'
import type { PeerInfo } from '../scheduler/rank.js'
import { peerApi } from './peer-api.js'

/** The nodes a driver may place stages on: itself, the peers it hears over mDNS, and those named with --peer. */
export interface PeerView {
  /** a fresh snapshot (named peers are asked for their meta, at most every 2 s) */
  peers (): Promise<PeerInfo[]>
}

const urlOf = (address: string, port: number) => `http://${address.includes(':') ? `[${address}]` : address}:${port}`

/** A peer of src/discovery as the scheduler ranks it, reached at its first IPv4 address (else its first). */
export function fromRecord (r: NodeRecord, url: string, extra: Partial<PeerInfo> = {}): PeerInfo {
  return {
    id: r.id, name: r.name ?? r.id, url, services: r.services, load: r.load, slots: r.slots, free: r.free, queue: r.queue,
    printers: r.printers?.map((p) => ({ name: p.name, port: p.port, state: p.state })), tokenRequired: r.tokenRequired, ...extra,
  }
}

export function fromPeer (p: Pick<Peer, 'addresses' | 'port' | 'record'>): PeerInfo | undefined {
  const address = p.addresses.find((a) => !a.includes(':')) ?? p.addresses[0]
  if (!address || !p.record?.id) return undefined
  return fromRecord(p.record, urlOf(address, p.port))
}

interface Meta {
  id?: string; serverName?: string; services?: string; cpuLoad?: number; cores?: number; slots?: number
  free?: number; queue?: number; tokenRequired?: boolean; printers?: Array<{ name: string; port: string; state?: string }>
}

/** A named node from its meta (GET /api/v1/meta). */
export function fromMeta (url: string, m: Meta): PeerInfo {
  const cores = Math.max(1, m.cores ?? 1)
  return {
    id: m.id ?? url, name: m.serverName ?? url, url,
    services: (m.services ?? '').split(',').filter(Boolean),
    load: Math.round((m.cpuLoad ?? 0) / cores * 100) / 100,
    slots: m.slots ?? 1, free: m.free ?? 0, queue: m.queue ?? 0,
    printers: (m.printers ?? []).map(({ name, port, state }) => ({ name, port, state })),
    tokenRequired: Boolean(m.tokenRequired),
  }
}

const STATIC_MS = 2000

export function createPeerView (
  config: { statics?: string[], token?: string },
  deps: {
    self: () => PeerInfo
    /** the peers heard over mDNS, once the LAN has answered (undefined without mDNS) */
    mdns: () => Promise<Peer[]> | Peer[] | undefined
    /** why a peer heard over mDNS at this address is not used (outside --allow, link-local), if it is not */
    refused?: (address: string) => string | undefined
  },
): PeerView {
  let asked: { at: number, peers: Promise<PeerInfo[]> } | undefined
  const statics = () => {
    if (!asked || Date.now() - asked.at > STATIC_MS) {
      asked = {
        at: Date.now(),
        peers: Promise.all((config.statics ?? []).map(async (url) => {
          try {
            return fromMeta(url, await peerApi(url, config.token).meta())
          } catch {
            return { id: url, name: url, url, services: [], load: 0, slots: 1, free: 0, queue: 0, reachable: false }
          }
        })),
      }
    }
    return asked.peers
  }
  return {
    async peers () {
      const self = deps.self()
      const out: PeerInfo[] = [self]
      for (const p of await deps.mdns() ?? []) {
        const info = fromPeer(p)
        // a record anyone on the LAN can send: its node gets stages and the token only inside --allow
        if (info && deps.refused?.(new URL(info.url).hostname.replace(/^\[|\]$/g, ''))) continue
        if (info && !out.some((x) => x.id === info.id)) out.push(info)
      }
      for (const p of await statics()) if (!out.some((x) => x.id === p.id)) out.push(p)
      return out
    },
  }
}
