import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PeerCache, type PeerEvent } from '../../src/discovery/cache.js'
import { encodeRecord, type NodeRecord } from '../../src/discovery/record.js'
import type { MdnsRecord } from '../../src/discovery/mdns.js'

const TYPE = '_rrcloud._tcp.local'
const record: NodeRecord = {
  version: '0.1.0', id: 'n1', services: ['echo'], load: 0.1, cores: 2, slots: 2, free: 2, queue: 0, printers: [], tokenRequired: false,
}
function answer (name: string, opts: { ttl?: number, load?: number, port?: number, host?: string, addr?: string } = {}): MdnsRecord[] {
  const fqdn = `${name}.${TYPE}`
  const ttl = opts.ttl ?? 4
  const host = opts.host ?? `${name}.local`
  return [
    { name: TYPE, type: 'PTR', ttl, data: fqdn },
    { name: fqdn, type: 'SRV', ttl, flush: true, data: { port: opts.port ?? 4468, target: host } },
    { name: fqdn, type: 'TXT', ttl, flush: true, data: encodeRecord({ ...record, id: name, load: opts.load ?? 0.1 }) },
    { name: host, type: 'A', ttl: 120, data: opts.addr ?? '10.77.0.2' },
  ]
}
const types = (events: PeerEvent[]): string[] => events.map((e) => `${e.type}:${e.peer.name}${e.type === 'down' ? `:${e.reason}` : ''}`)

test('a complete answer brings a peer up; a repeat of it changes nothing but seenAt', () => {
  const c = new PeerCache()
  assert.deepEqual(types(c.apply(answer('a'), '10.77.0.2', 1000)), ['up:a'])
  const [p] = c.peers(1500)
  assert.equal(p.host, 'a.local')
  assert.equal(p.port, 4468)
  assert.deepEqual(p.addresses, ['10.77.0.2'])
  assert.equal(p.record.id, 'a')
  assert.equal(p.seenAt, 1000)
  assert.equal(p.ageMs, 500)
  assert.deepEqual(c.apply(answer('a'), '10.77.0.2', 2000), [])
  assert.equal(c.peers(2000)[0].seenAt, 2000)
})

test('a peer is shown only once PTR, SRV and a valid TXT are known', () => {
  const c = new PeerCache()
  const [ptr, srv, txt, a] = answer('a')
  assert.deepEqual(c.apply([ptr, a], '10.77.0.2', 0), [])
  assert.deepEqual(c.apply([srv], '10.77.0.2', 0), [])
  assert.deepEqual(c.apply([{ ...txt, data: ['txtvers=9'] }], '10.77.0.2', 0), [], 'a TXT we cannot read')
  assert.deepEqual(types(c.apply([txt], '10.77.0.2', 0)), ['up:a'])
})

test('a TXT-only packet updates the record in place', () => {
  const c = new PeerCache()
  c.apply(answer('a'), '10.77.0.2', 0)
  const txt = answer('a', { load: 0.8 })[2]
  const events = c.apply([txt], '10.77.0.2', 100)
  assert.deepEqual(types(events), ['update:a'])
  const ev = events[0] as Extract<PeerEvent, { type: 'update' }>
  assert.equal(ev.peer.record.load, 0.8)
  assert.equal(ev.previous.record.load, 0.1)
  assert.equal(c.peers(100)[0].record.load, 0.8)
})

test('a goodbye takes the peer down at once; it may come back later', () => {
  const c = new PeerCache()
  c.apply(answer('a'), '10.77.0.2', 0)
  c.apply(answer('b', { addr: '10.77.0.3' }), '10.77.0.3', 0)
  const bye = answer('a').slice(0, 3).map((r) => ({ ...r, ttl: 0 }))
  assert.deepEqual(types(c.apply(bye, '10.77.0.2', 10)), ['down:a:goodbye'])
  assert.deepEqual(c.peers(10).map((p) => p.name), ['b'])
  assert.deepEqual(types(c.apply(answer('a'), '10.77.0.2', 20)), ['up:a'])
})

test('a goodbye for an old TXT alone does not take the peer down', () => {
  const c = new PeerCache()
  c.apply(answer('a'), '10.77.0.2', 0)
  const [, , oldTxt] = answer('a')
  const [, , newTxt] = answer('a', { load: 0.9 })
  assert.deepEqual(types(c.apply([{ ...oldTxt, ttl: 0 }, newTxt], '10.77.0.2', 10)), ['update:a'])
  assert.equal(c.peers(10)[0].record.load, 0.9)
  assert.deepEqual(c.apply([{ ...oldTxt, ttl: 0 }], '10.77.0.2', 20), [], 'a goodbye for a TXT we no longer hold')
})

test('a silent peer expires after its TTL plus the grace, not before', () => {
  const c = new PeerCache(500)
  c.apply(answer('a'), '10.77.0.2', 0)
  assert.deepEqual(c.expire(4400), [])
  assert.deepEqual(types(c.expire(4600)), ['down:a:expired'])
  assert.deepEqual(c.peers(4600), [])
  assert.deepEqual(c.expire(5000), [], 'reported once')
})

test('refresh is due at half the TTL, then at most every fifth of it', () => {
  const c = new PeerCache()
  assert.equal(c.refreshDue(10_000, 0), false, 'nothing to refresh')
  c.apply(answer('a'), '10.77.0.2', 0)
  assert.equal(c.refreshDue(1900, 0), false)
  assert.equal(c.refreshDue(2000, 0), true)
  assert.equal(c.refreshDue(2500, 2000), false)
  assert.equal(c.refreshDue(2800, 2000), true)
  c.apply(answer('a'), '10.77.0.2', 2800)
  assert.equal(c.refreshDue(3000, 2000), false, 'answers reset the clock')
  // a browser that draws 0.1 asks 0.4 s (a tenth of the TTL) past the half
  const d = new PeerCache()
  d.apply(answer('a'), '10.77.0.2', 0)
  assert.equal(d.refreshDue(2300, 0, 0.1), false)
  assert.equal(d.refreshDue(2400, 0, 0.1), true)
})

test('addresses: the answering address first, then IPv4, then IPv6; the source when no A is known', () => {
  const c = new PeerCache()
  const recs = answer('a', { addr: '172.17.0.1' })
  recs.push({ name: 'a.local', type: 'AAAA', ttl: 120, data: 'fd00::2' }, { name: 'a.local', type: 'A', ttl: 120, data: '10.77.0.2' })
  c.apply(recs, '10.77.0.2', 0)
  assert.deepEqual(c.peers(0)[0].addresses, ['10.77.0.2', '172.17.0.1', 'fd00::2'])
  const d = new PeerCache()
  d.apply(answer('b').slice(0, 3), '10.77.0.5', 0)
  assert.deepEqual(d.peers(0)[0].addresses, ['10.77.0.5'])
})

test('a port or address change is an update; other service types and hosts are ignored', () => {
  const c = new PeerCache()
  c.apply(answer('a'), '10.77.0.2', 0)
  assert.deepEqual(types(c.apply([answer('a', { port: 9000 })[1]], '10.77.0.2', 1)), ['update:a'])
  assert.equal(c.peers(1)[0].port, 9000)
  assert.deepEqual(c.apply([{ name: '_http._tcp.local', type: 'PTR', ttl: 4, data: 'x._http._tcp.local' }], '10.77.0.9', 2), [])
  assert.deepEqual(c.apply([{ name: 'other.local', type: 'A', ttl: 4, data: '10.0.0.1' }], '10.77.0.9', 2), [])
  assert.deepEqual(types(c.apply([{ name: 'A.LOCAL', type: 'A', ttl: 120, data: '10.77.0.7' }], '10.77.0.2', 3)), ['update:a'], 'names are case-insensitive')
})

test('known answers: the instances whose PTR has more than half its TTL left, with the seconds left', () => {
  const c = new PeerCache()
  c.apply(answer('a'), '10.77.0.2', 1000)
  c.apply(answer('b'), '10.77.0.3', 2500)
  assert.deepEqual(c.knownAnswers(2600), [{ fqdn: `a.${TYPE}`, ttl: 2 }, { fqdn: `b.${TYPE}`, ttl: 3 }])
  // a has 1.5 s of 4 left: it is to answer again
  assert.deepEqual(c.knownAnswers(3500), [{ fqdn: `b.${TYPE}`, ttl: 3 }])
  assert.deepEqual(c.knownAnswers(5000), [])
})
