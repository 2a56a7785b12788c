// What a browser knows about peers: records received, when each expires, and which peers are
// complete enough to show. Pure (time is passed in), so it is tested without a network.
import { decodeRecord, type NodeRecord } from './record.js'
import { eqName, SERVICE_TYPE } from './names.js'
import type { MdnsRecord, SrvData } from './mdns.js'

export interface Peer {
  /** instance name, e.g. `box-3fa9c1` */
  name: string
  /** `<name>._rrcloud._tcp.local` */
  fqdn: string
  /** SRV target, e.g. `box.local` */
  host: string
  /** the address the answers came from first, then other IPv4, then IPv6 */
  addresses: string[]
  port: number
  record: NodeRecord
  /** ms since the epoch of the last answer from this peer */
  seenAt: number
  /** ms since seenAt, when the snapshot was taken */
  ageMs: number
}

export type PeerEvent =
  | { type: 'up', peer: Peer }
  | { type: 'update', peer: Peer, previous: Peer }
  | { type: 'down', peer: Peer, reason: 'goodbye' | 'expired' }

interface Held<T> { value: T, exp: number, ttlMs: number }

interface Entry {
  fqdn: string
  ptr?: Held<true>
  srv?: Held<SrvData>
  txt?: Held<{ raw: string[], record?: NodeRecord }>
  seenAt: number
  referer?: string
  goodbye?: boolean
  shown?: Peer
  shownKey?: string
}

const SUFFIX = `.${SERVICE_TYPE}`
const isInstance = (name: string): boolean => name.toLowerCase().endsWith(SUFFIX) && name.length > SUFFIX.length
const held = <T>(value: T, ttl: number, now: number): Held<T> => ({ value, exp: now + ttl * 1000, ttlMs: ttl * 1000 })

export class PeerCache {
  private entries = new Map<string, Entry>()
  /** host name (lower case) → address → its record */
  private hosts = new Map<string, Map<string, Held<string>>>()

  /** @param graceMs how long past a record's expiry a silent peer is kept */
  constructor (private readonly graceMs = 500) {}

  private entry (fqdn: string, now: number): Entry {
    const key = fqdn.toLowerCase()
    let e = this.entries.get(key)
    if (!e) this.entries.set(key, e = { fqdn, seenAt: now })
    return e
  }

  /** Takes in the records of one packet; returns what changed for the peers they concern. */
  apply (records: MdnsRecord[], referer: string, now: number): PeerEvent[] {
    const touched = new Set<Entry>()
    const hostsTouched = new Set<string>()
    for (const rr of records) {
      const ttl = rr.ttl ?? 0
      let e: Entry | undefined
      if (rr.type === 'PTR' && eqName(rr.name, SERVICE_TYPE) && isInstance(String(rr.data))) {
        e = this.entry(String(rr.data), now)
        if (ttl === 0) e.goodbye = true
        else e.ptr = held(true, ttl, now)
      } else if ((rr.type === 'SRV' || rr.type === 'TXT') && isInstance(rr.name)) {
        e = this.entry(rr.name, now)
        if (rr.type === 'SRV') {
          if (ttl === 0) e.goodbye = true
          else e.srv = held(rr.data as SrvData, ttl, now)
        } else {
          const raw = (rr.data as Array<Buffer | string>).map(String)
          const same = e.txt !== undefined && e.txt.value.raw.join('\n') === raw.join('\n')
          // a TXT goodbye withdraws that TXT only (a responder may retire an old TXT this way)
          if (ttl === 0) { if (same) e.txt = undefined } else e.txt = held({ raw, record: same ? e.txt!.value.record : decodeRecord(raw) }, ttl, now)
        }
      } else if (rr.type === 'A' || rr.type === 'AAAA') {
        const host = rr.name.toLowerCase()
        let addrs = this.hosts.get(host)
        if (!addrs) this.hosts.set(host, addrs = new Map())
        const addr = String(rr.data)
        if (ttl === 0) addrs.delete(addr)
        else addrs.set(addr, held(addr, ttl, now))
        hostsTouched.add(host)
      }
      if (!e) continue
      touched.add(e)
      if (ttl > 0) { e.seenAt = now; e.referer = referer }
    }
    for (const e of this.entries.values()) {
      if (e.srv && hostsTouched.has(e.srv.value.target.toLowerCase())) touched.add(e)
    }
    return [...touched].flatMap((e) => this.diff(e, now))
  }

  /** Drops what has expired; returns the peers that left. */
  expire (now: number): PeerEvent[] {
    for (const [host, addrs] of this.hosts) {
      for (const [a, h] of addrs) if (h.exp + this.graceMs < now) addrs.delete(a)
      if (addrs.size === 0) this.hosts.delete(host)
    }
    const events: PeerEvent[] = []
    for (const e of this.entries.values()) {
      for (const k of ['ptr', 'srv', 'txt'] as const) {
        if (e[k] && e[k]!.exp + this.graceMs < now) e[k] = undefined
      }
      events.push(...this.diff(e, now))
    }
    return events
  }

  /**
   * RFC 6762 §7.1 known answers: the instances whose PTR record has more than half its TTL left,
   * with the seconds left, for a query to list (their responders then stay silent).
   */
  knownAnswers (now: number): Array<{ fqdn: string, ttl: number }> {
    const out: Array<{ fqdn: string, ttl: number }> = []
    for (const e of this.entries.values()) {
      const left = e.ptr ? e.ptr.exp - now : 0
      if (e.ptr && left > e.ptr.ttlMs / 2) out.push({ fqdn: e.fqdn, ttl: Math.floor(left / 1000) })
    }
    return out
  }

  /**
   * RFC 6762 §5.2 cache maintenance: true when a record of a shown peer has lived half its TTL
   * (and `late` of it more: each browser draws its own, so that the browsers of a LAN, which hold
   * the same records, do not all ask at once) without being refreshed, and we have not asked, nor
   * heard anyone ask, for a while (a fifth of that TTL).
   */
  refreshDue (now: number, lastQueryAt: number, late = 0): boolean {
    for (const e of this.entries.values()) {
      if (!e.shown) continue
      for (const h of [e.ptr, e.srv, e.txt]) {
        if (h && now >= h.exp - h.ttlMs * (0.5 - late) && now - lastQueryAt >= Math.max(250, h.ttlMs / 5)) return true
      }
    }
    return false
  }

  peers (now: number): Peer[] {
    return [...this.entries.values()].filter((e) => e.shown).map((e) => ({ ...e.shown!, ageMs: now - e.seenAt }))
  }

  private addresses (e: Entry, target: string): string[] {
    const known = [...(this.hosts.get(target.toLowerCase())?.keys() ?? [])]
    if (known.length === 0) return e.referer ? [e.referer] : []
    const rank = (a: string): number => a === e.referer ? 0 : a.includes(':') ? 2 : 1
    return known.sort((a, b) => rank(a) - rank(b))
  }

  private view (e: Entry, now: number): Peer | undefined {
    if (e.goodbye || !e.ptr || !e.srv || !e.txt?.value.record) return undefined
    const addresses = this.addresses(e, e.srv.value.target)
    if (addresses.length === 0) return undefined
    return {
      name: e.fqdn.slice(0, -SUFFIX.length),
      fqdn: e.fqdn,
      host: e.srv.value.target,
      addresses,
      port: e.srv.value.port,
      record: e.txt.value.record,
      seenAt: e.seenAt,
      ageMs: now - e.seenAt,
    }
  }

  private diff (e: Entry, now: number): PeerEvent[] {
    const peer = this.view(e, now)
    const previous = e.shown
    const events: PeerEvent[] = []
    if (!peer) {
      if (previous) events.push({ type: 'down', peer: previous, reason: e.goodbye ? 'goodbye' : 'expired' })
      e.shown = e.shownKey = undefined
      if (e.goodbye || (!e.ptr && !e.srv && !e.txt)) this.entries.delete(e.fqdn.toLowerCase())
      return events
    }
    const key = JSON.stringify([peer.host, peer.port, peer.addresses, e.txt!.value.raw])
    e.shown = peer
    if (!previous) events.push({ type: 'up', peer })
    else if (key !== e.shownKey) events.push({ type: 'update', peer, previous })
    e.shownKey = key
    return events
  }
}
