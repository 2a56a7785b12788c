// Answers mDNS queries from the records a node serves (RFC 6762 §6), on the socket of mdns.ts:
// multicast answers go out on the interface the query came from; a query from a port other than
// 5353 (a legacy resolver such as `dig -p 5353`, or a small embedded one) gets a unicast reply to
// that port with the query's id and question, TTLs of at most 10 s and no cache-flush bit
// (§6.7, §10.2). Answers the querier already holds with at least half their TTL left are left out
// (known-answer suppression, §7.1). DNS-SD additionals (RFC 6763 §12) come with PTR and SRV answers.
import { isDeepStrictEqual } from 'node:util'
import { dns } from './codec.js'
import { MDNS_PORT, type Iface, type Mdns, type MdnsPacket, type MdnsRecord, type Rinfo } from './mdns.js'
import { eqName } from './names.js'

export interface Responder {
  /** answer with these records from now on (replaces the previous set) */
  serve (records: MdnsRecord[]): void
  close (): void
}

const LEGACY_TTL_MAX = 10

const same = (a: MdnsRecord, b: MdnsRecord): boolean =>
  a.type === b.type && eqName(a.name, b.name) && isDeepStrictEqual(a.data, b.data)

/** What to answer a query with, from the records served; empty when none is ours. */
export function answer (query: MdnsPacket, records: MdnsRecord[]): { answers: MdnsRecord[], additionals: MdnsRecord[] } {
  const known = query.answers ?? []
  const answers: MdnsRecord[] = []
  for (const q of query.questions ?? []) {
    for (const r of records) {
      if (!eqName(r.name, q.name) || (q.type !== 'ANY' && q.type !== r.type)) continue
      if (known.some((k) => same(k, r) && (k.ttl ?? 0) >= (r.ttl ?? 0) / 2)) continue
      if (!answers.includes(r)) answers.push(r)
    }
  }
  const additionals: MdnsRecord[] = []
  const add = (name: string, types: string[]): void => {
    for (const r of records) {
      if (eqName(r.name, name) && types.includes(r.type) && !answers.includes(r) && !additionals.includes(r)) additionals.push(r)
    }
  }
  for (const r of answers) {
    if (r.type === 'PTR') add(String(r.data), ['SRV', 'TXT'])
  }
  for (const r of [...answers, ...additionals]) {
    if (r.type === 'SRV') add((r.data as { target: string }).target, ['A', 'AAAA'])
  }
  return { answers, additionals }
}

const legacy = (r: MdnsRecord): MdnsRecord => ({ ...r, flush: false, ttl: Math.min(r.ttl ?? LEGACY_TTL_MAX, LEGACY_TTL_MAX) })

/** Starts answering queries heard on `mdns`. */
export function createResponder (mdns: Mdns): Responder {
  let records: MdnsRecord[] = []
  const stop = mdns.onQuery((packet: MdnsPacket, rinfo: Rinfo, iface?: Iface) => {
    if (records.length === 0) return
    const { answers, additionals } = answer(packet, records)
    if (answers.length === 0) return
    if (rinfo.port !== MDNS_PORT) {
      void mdns.send({
        type: 'response', id: packet.id, flags: dns.AUTHORITATIVE_ANSWER, questions: packet.questions,
        answers: answers.map(legacy), additionals: additionals.map(legacy),
      }, { unicast: rinfo })
      return
    }
    void mdns.respond(answers, additionals, { iface })
  })
  return {
    serve (next) { records = next },
    close () {
      records = []
      stop()
    },
  }
}
