import { test } from 'node:test'
import assert from 'node:assert/strict'
import { afterSubmit, rank, type PeerInfo } from '../../src/scheduler/rank.js'

const peer = (id: string, o: Partial<PeerInfo> = {}): PeerInfo => ({
  id, name: id, url: `http://${id}:4468`, services: ['echo', 'slic3r'], load: 0, slots: 2, free: 2, queue: 0, ...o,
})
const order = (service: string, peers: PeerInfo[], needs = {}, opts = {}) => rank(service, needs, peers, opts).map((c) => c.peer.id)

test('filter, then rank: table', () => {
  const cases: Array<[string, string, PeerInfo[], object, object, string[]]> = [
    ['only peers that offer the service', 'openscad', [peer('a'), peer('b', { services: ['openscad'] })], {}, {}, ['b']],
    ['nobody offers it', 'povray', [peer('a')], {}, {}, []],
    ['free slots beat a queue', 'echo', [peer('a', { free: 0, queue: 3 }), peer('b')], {}, {}, ['b', 'a']],
    ['more slots, less wait', 'echo', [peer('a', { slots: 1, free: 0 }), peer('b', { slots: 4, free: 0 })], {}, {}, ['b', 'a']],
    ['a loaded CPU counts against a free slot', 'echo', [peer('a', { load: 2 }), peer('b', { load: 0.1 })], {}, {}, ['b', 'a']],
    ['the local node wins a tie', 'echo', [peer('a'), peer('b', { local: true })], {}, {}, ['b', 'a']],
    ['but not when clearly worse', 'echo', [peer('a'), peer('b', { local: true, free: 0, queue: 2 })], {}, {}, ['a', 'b']],
    ['unreachable peers are left out', 'echo', [peer('a', { reachable: false }), peer('b', { free: 0, queue: 9 })], {}, {}, ['b']],
    ['avoided peers are left out until their time is up', 'echo', [peer('a'), peer('b')], {}, { now: 100, avoid: new Map([['a', 200]]) }, ['b']],
    ['an expired avoidance is forgotten', 'echo', [peer('a'), peer('b')], {}, { now: 300, avoid: new Map([['a', 200]]) }, ['a', 'b']],
    ['names break remaining ties', 'echo', [peer('c'), peer('a'), peer('b')], {}, {}, ['a', 'b', 'c']],
  ]
  for (const [what, service, peers, needs, opts, expected] of cases) assert.deepEqual(order(service, peers, needs, opts), expected, what)
})

test('printer tasks go only to the node with that printer (by name or port), whatever its load', () => {
  const pi = peer('pi', { services: ['printrun'], load: 3, free: 0, queue: 4, printers: [{ name: 'mk3', port: '/dev/ttyUSB0' }] })
  const other = peer('other', { services: ['printrun'], printers: [{ name: 'ender', port: '/dev/ttyACM0' }] })
  assert.deepEqual(order('printrun', [other, pi], { printer: 'mk3' }), ['pi'])
  assert.deepEqual(order('printrun', [other, pi], { printer: '/dev/ttyUSB0' }), ['pi'])
  assert.deepEqual(order('printrun', [other, pi], { printer: 'prusa' }), [])
})

test('a batch spreads in proportion to slots (30 tasks over 1, 2 and 3 slots: 5, 10, 15)', () => {
  let peers = [peer('one', { slots: 1, free: 1 }), peer('two', { slots: 2, free: 2 }), peer('three', { slots: 3, free: 3 })]
  const count: Record<string, number> = {}
  for (let i = 0; i < 30; i++) {
    const best = rank('echo', {}, peers)[0].peer.id
    count[best] = (count[best] ?? 0) + 1
    peers = afterSubmit(peers, best)
  }
  assert.deepEqual(count, { one: 5, two: 10, three: 15 })
})
