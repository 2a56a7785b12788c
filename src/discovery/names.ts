// Names we claim on the LAN and how a claim conflicts with another responder's (RFC 6762 §8-9).
import { createHash } from 'node:crypto'
import { isIPv4 } from 'node:net'
import { dns } from './codec.js'
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
  /** the addresses we publish for `host` */
  addresses: string[]
  /** every address of this machine: a responder naming our host with only these is not a rival */
  local: Set<string>
}

export interface Conflicts {
  instance: boolean
  host: boolean
  /** RFC 6762 §8.2: our records sort lexicographically later than the rival's, so we keep the name */
  instanceWeWin: boolean
  hostWeWin: boolean
}

const TYPE_CODE: Record<string, number> = { A: 1, SRV: 33, AAAA: 28 }

/** The record's class, type and raw rdata (no name compression, names in lower case), as §8.2 compares them. */
function wire (type: string, data: unknown): Buffer {
  const head = Buffer.from([0, 1, TYPE_CODE[type] >> 8, TYPE_CODE[type] & 0xff])
  const rdata = type === 'SRV' ? dns.srv.encode({ ...(data as SrvData), target: (data as SrvData).target.toLowerCase() }) : type === 'A' ? dns.a.encode(String(data)) : dns.aaaa.encode(String(data))
  return Buffer.concat([head, rdata.subarray(2)])
}

/**
 * RFC 6762 §8.2: each side's records sorted, then compared pairwise; the first difference decides,
 * and a side whose records are all equal to the other's first ones but has more wins.
 * Positive when `ours` is lexicographically later (we win), 0 when identical.
 */
export function compareRecordSets (ours: Buffer[], theirs: Buffer[]): number {
  const a = [...ours].sort(Buffer.compare)
  const b = [...theirs].sort(Buffer.compare)
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const c = Buffer.compare(a[i], b[i])
    if (c !== 0) return c
  }
  return a.length - b.length
}

const uniq = (bufs: Buffer[]): Buffer[] => bufs.filter((x, i) => bufs.findIndex((y) => y.equals(x)) === i)

/**
 * Which of our names a set of received records disputes, and who wins by §8.2. An SRV for our
 * instance with other data is a rival; so is a set of addresses for our host name that differs from
 * ours and names an address that is not this machine's (our own packets, or avahi publishing this
 * machine's name, are not rivals). Goodbyes (TTL 0) and TXT records claim nothing we compare.
 */
export function findConflicts (records: MdnsRecord[], claim: Claim): Conflicts {
  const c: Conflicts = { instance: false, host: false, instanceWeWin: true, hostWeWin: true }
  const live = records.filter((rr) => rr.ttl !== 0)
  const srv = uniq(live.filter((rr) => rr.type === 'SRV' && eqName(rr.name, claim.fqdn)).map((rr) => wire('SRV', rr.data)))
  if (srv.length) {
    const order = compareRecordSets([wire('SRV', claim.srv)], srv)
    c.instance = order !== 0
    c.instanceWeWin = order > 0
  }
  const addrs = live.filter((rr) => (rr.type === 'A' || rr.type === 'AAAA') && eqName(rr.name, claim.host))
  if (addrs.some((rr) => !claim.local.has(String(rr.data)))) {
    const ours = claim.addresses.map((a) => wire(isIPv4(a) ? 'A' : 'AAAA', a))
    const order = compareRecordSets(ours, uniq(addrs.map((rr) => wire(rr.type, String(rr.data)))))
    c.host = order !== 0
    c.hostWeWin = order > 0
  }
  return c
}
