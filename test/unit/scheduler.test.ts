import { test } from 'node:test'
import assert from 'node:assert/strict'
import { afterSubmit, rank, spread, type PeerInfo } from '../../src/scheduler/rank.js'
import { preferData } from '../../src/scheduler/data.js'

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

test('spread: simultaneous clients draw among the best in proportion to their room; table', () => {
  const idle = [peer('one', { slots: 1, free: 1 }), peer('two', { slots: 2, free: 2 }), peer('three', { slots: 3, free: 3 })]
  const first = (peers: PeerInfo[], random: number) => spread(rank('echo', {}, peers), random)[0].peer.id
  const cases: Array<[string, PeerInfo[], number, string]> = [
    // 1 / score of idle nodes is their slot count; in rank order: three [0, 3/6), two [3/6, 5/6), one [5/6, 1)
    ['idle nodes by slots: the largest share', idle, 0.1, 'three'],
    ['idle nodes by slots: the middle share', idle, 0.6, 'two'],
    ['idle nodes by slots: the smallest share', idle, 0.9, 'one'],
    ['a node without a free slot is not drawn while another has one', [peer('busy', { free: 0 }), peer('idle')], 0, 'idle'],
    ['the local node keeps first place when it ranked first', [peer('a', { slots: 8, free: 8 }), peer('me', { local: true, slots: 8, free: 8 })], 0.99, 'me'],
    ['no free slot anywhere: the least wait, not a draw', [peer('a', { free: 0, slots: 1, queue: 2 }), peer('b', { free: 0, slots: 1, queue: 1 })], 0.99, 'b'],
  ]
  for (const [what, peers, random, expected] of cases) assert.equal(first(peers, random), expected, what)
  // the rest keep their rank order behind the drawn one
  assert.deepEqual(spread(rank('echo', {}, idle), 0.9).map((c) => c.peer.id), ['one', 'three', 'two'])
})

test('spread: over many clients each node gets its share; a batch after a drawn first pick still splits 5, 10, 15', () => {
  const idle = [peer('one', { slots: 1, free: 1 }), peer('two', { slots: 2, free: 2 }), peer('three', { slots: 3, free: 3 })]
  const shares: Record<string, number> = {}
  for (let i = 0; i < 600; i++) {
    const id = spread(rank('echo', {}, idle), (i + 0.5) / 600)[0].peer.id
    shares[id] = (shares[id] ?? 0) + 1
  }
  assert.deepEqual(shares, { one: 100, two: 200, three: 300 })
  for (const random of [0.05, 0.4, 0.95]) {
    let peers = idle
    const count: Record<string, number> = {}
    for (let i = 0; i < 30; i++) {
      const ranked = rank('echo', {}, peers)
      const best = (i === 0 ? spread(ranked, random) : ranked)[0].peer.id
      count[best] = (count[best] ?? 0) + 1
      peers = afterSubmit(peers, best)
    }
    assert.deepEqual(count, { one: 5, two: 10, three: 15 }, `first draw ${random}`)
  }
})

test('data: a node with the result first, then the one with the big files; small differences keep the load order', () => {
  const MiB = 1 << 20
  const nodes = ['idle', 'busy', 'busier']
  // nothing held anywhere: load order
  assert.deepEqual(preferData(nodes, [{ hit: false, missingBytes: 50 * MiB }, { hit: false, missingBytes: 50 * MiB }, undefined], 50 * MiB), nodes)
  // the busiest node holds the 50 MiB model: it goes first, the others keep their order
  assert.deepEqual(preferData(nodes, [{ hit: false, missingBytes: 50 * MiB }, undefined, { hit: false, missingBytes: 0 }], 50 * MiB), ['busier', 'idle', 'busy'])
  // a few KiB missing here or there are no reason to wait behind a busy node
  assert.deepEqual(preferData(nodes, [{ hit: false, missingBytes: 300 << 10 }, { hit: false, missingBytes: 0 }, { hit: false, missingBytes: 0 }], MiB), nodes)
  // a cache hit beats everything, even a node that has all the files
  assert.deepEqual(preferData(nodes, [{ hit: false, missingBytes: 0 }, { hit: true, missingBytes: 0 }, { hit: true, missingBytes: 0 }], 50 * MiB), ['busy', 'busier', 'idle'])
})
