// Names we claim on the LAN and how a claim conflicts with another responder's (RFC 6762 §8-9).
import { createHash } from 'node:crypto'
import { truncateBytes } from './record.js'
import type { MdnsRecord, SrvData } from './mdns.js'

export const SERVICE_TYPE = '_rrcloud._tcp.local'
const LABEL_MAX = 63

/** A DNS host label from a host name: first label, lower case, letters, digits and dashes. */
export function hostLabel (hostname: string): string {
  const label = hostname.split('.')[0].toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '')
  return label.slice(0, LABEL_MAX).replace(/-+$/, '') || 'rrcloud'
}

/** Six hex digits derived from the node id: short, and the same whatever the id looks like. */
export function shortId (id: string): string {
  return createHash('sha256').update(id).digest('hex').slice(0, 6)
}

/** `base`, or `base-N` for the N-th attempt after a conflict, within one 63-byte label. */
export function withSuffix (base: string, n: number): string {
  if (n <= 1) return base
  const suffix = `-${n}`
  return truncateBytes(base, LABEL_MAX - suffix.length) + suffix
}

/** The instance label `<name>-<short id>`; dots would split the label, so they become dashes. */
export function instanceLabel (name: string, id: string): string {
  const tail = `-${shortId(id)}`
  const clean = name.replace(/\./g, '-').trim() || 'rrcloud'
  return truncateBytes(clean, LABEL_MAX - tail.length - 3) + tail
}

export const eqName = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase()

export interface Claim {
  /** `<instance>._rrcloud._tcp.local` */
  fqdn: string
  srv: SrvData
  /** `<host>.local` */
  host: string
  /** every address of this machine: a responder naming our host with one of these is not a rival */
  local: Set<string>
}

export interface Conflicts {
  instance: boolean
  host: boolean
  /** when the rival's data sorts before ours, RFC 6762 §8.2-style tie-breaking lets us keep the name */
  instanceWeWin: boolean
  hostWeWin: boolean
}

const srvKey = (s: SrvData): string => `${String(s.port).padStart(5, '0')} ${s.target.toLowerCase()}`

/**
 * Which of our names a set of received records disputes. An SRV for our instance pointing elsewhere
 * is a rival; so is an address for our host name that is not one of this machine's. Goodbyes
 * (TTL 0) and TXT records claim nothing we could compare.
 */
export function findConflicts (records: MdnsRecord[], claim: Claim): Conflicts {
  const c: Conflicts = { instance: false, host: false, instanceWeWin: true, hostWeWin: true }
  const ourAddrs = [...claim.local].sort().join(',')
  for (const rr of records) {
    if (rr.ttl === 0) continue
    if (rr.type === 'SRV' && eqName(rr.name, claim.fqdn)) {
      const theirs = rr.data as SrvData
      if (srvKey(theirs) !== srvKey(claim.srv)) {
        c.instance = true
        if (srvKey(theirs) > srvKey(claim.srv)) c.instanceWeWin = false
      }
    } else if ((rr.type === 'A' || rr.type === 'AAAA') && eqName(rr.name, claim.host)) {
      const addr = String(rr.data)
      if (!claim.local.has(addr)) {
        c.host = true
        if (addr > ourAddrs) c.hostWeWin = false
      }
    }
  }
  return c
}
