import { setTimeout as sleep } from 'node:timers/promises'
import { fromDiscovered, type Discovered, type LanPeer } from './lan.js'

export interface PeerChange { event: 'up' | 'update' | 'down'; peer: LanPeer }

const same = (a: LanPeer, b: LanPeer) => JSON.stringify({ ...a, ageMs: 0 }) === JSON.stringify({ ...b, ageMs: 0 })

/** What changed between two looks at the LAN: nodes that came, changed and went. */
export function peerChanges (before: LanPeer[], after: LanPeer[]): PeerChange[] {
  const prev = new Map(before.map((p) => [p.id, p]))
  const now = new Map(after.map((p) => [p.id, p]))
  return [
    ...after.filter((p) => !prev.has(p.id)).map((peer) => ({ event: 'up' as const, peer })),
    ...after.filter((p) => prev.has(p.id) && !same(p, prev.get(p.id)!)).map((peer) => ({ event: 'update' as const, peer })),
    ...before.filter((p) => !now.has(p.id)).map((peer) => ({ event: 'down' as const, peer })),
  ]
}

export interface FollowOptions {
  /** browse mDNS (else: look every `everyMs`) */
  mdns: boolean
  interface?: string
  /** one look at the LAN without mDNS (the node on this machine, the nodes named) */
  look: () => Promise<LanPeer[]>
  everyMs?: number
  signal: AbortSignal
}

/**
 * Follows the LAN until `signal` aborts: `show` gets every node known and what changed, at each
 * change, and once a second with nothing changed (for ages on a terminal). With mDNS a browser of
 * its own reports changes as they happen; without, the LAN is looked at every `everyMs`.
 */
export async function followPeers (o: FollowOptions, show: (peers: LanPeer[], changes: PeerChange[]) => void): Promise<void> {
  const stopped = new Promise<void>((resolve) => {
    if (o.signal.aborted) resolve()
    else o.signal.addEventListener('abort', () => resolve(), { once: true })
  })
  if (!o.mdns) {
    let prev: LanPeer[] = []
    while (!o.signal.aborted) {
      const now = await o.look()
      show(now, peerChanges(prev, now))
      prev = now
      await sleep(o.everyMs ?? 2000, undefined, { signal: o.signal }).catch(() => {})
    }
    return
  }
  const { createBrowser } = await import('../discovery/index.js')
  const browser = createBrowser({ interface: o.interface })
  const all = () => browser.peers().flatMap((p) => fromDiscovered(p) ?? [])
  const on = (event: PeerChange['event']) => (p: Discovered) => {
    const peer = fromDiscovered(p)
    if (peer) show(all(), [{ event, peer }])
  }
  browser.on('up', on('up'))
  browser.on('update', on('update'))
  browser.on('down', on('down'))
  try {
    await Promise.race([browser.ready, stopped])
    show(all(), [])
    const tick = setInterval(() => show(all(), []), 1000)
    await stopped
    clearInterval(tick)
  } finally {
    await browser.close()
  }
}
