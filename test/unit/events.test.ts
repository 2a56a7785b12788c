import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { createEventHub } from '../../src/node/events.js'
import type { Browser, Peer } from '../../src/discovery/index.js'
import type { Task } from '../../src/node/task.js'

function hub (capacity = 1000) {
  const runner = { events: new EventEmitter(), list: (): Task[] => [] }
  let free = 2
  const h = createEventHub({ nodeId: 'me', capacity, statsEveryMs: 60_000 }, {
    runner, printers: new Map(), printerStatus: () => [], stats: () => ({ free, slots: 2 }),
  })
  return { h, runner, setFree: (n: number) => { free = n } }
}

const task = (id: string, status: Task['status'], extra: Partial<Task> = {}): Task =>
  ({ id, service: 'echo', status, client: '127.0.0.1', server: 'n', cmd: 'cat', ctime: 1, in: [], ...extra })

test('the ring keeps the last events: after an id still kept, exactly those after it; after one dropped, or of another run, nothing', () => {
  const { h, runner } = hub(3)
  for (let i = 1; i <= 5; i++) runner.events.emit('task', task(`1-00000${i}`, 'queued'))
  const boot = h.lastId().split('-')[0]
  assert.equal(h.lastId(), `${boot}-5`)
  assert.deepEqual(h.since(`${boot}-2`)?.map((e) => e.seq), [3, 4, 5])
  assert.deepEqual(h.since(`${boot}-4`)?.map((e) => e.seq), [5])
  assert.deepEqual(h.since(`${boot}-5`), [])
  assert.equal(h.since(`${boot}-1`), undefined, 'event 2 is gone')
  assert.equal(h.since(`${boot}-9`), undefined, 'an id from the future')
  assert.equal(h.since('other-3'), undefined, 'another run of the node')
  assert.equal(h.since('nonsense'), undefined)
  h.close()
})

test('a task\'s notifier is only in the form for token holders; stats only when they change', () => {
  const { h, runner, setFree } = hub()
  const seen: string[] = []
  h.on((e) => seen.push(`${e.event} ${e.full ? 'full' : ''}`.trim()))
  runner.events.emit('task', task('1-000001', 'queued', { notifier: 'http://x/?key=secret' }))
  runner.events.emit('task', task('1-000002', 'queued'))
  const [withNotifier] = h.since(`${h.lastId().split('-')[0]}-0`)!
  assert.ok(!withNotifier.data.includes('secret'))
  assert.ok(withNotifier.full!.includes('secret'))
  runner.events.emit('stats')
  runner.events.emit('stats')
  setFree(1)
  runner.events.emit('stats')
  assert.deepEqual(seen, ['task full', 'task', 'stats', 'stats'])
  h.close()
  runner.events.emit('task', task('1-000003', 'queued'))
  assert.equal(seen.length, 4, 'closed: nothing more')
})

test('peers: up, update and down become peer events, the node itself is left out, the state now lists them', () => {
  const { h } = hub()
  const b = new EventEmitter() as unknown as Browser & EventEmitter
  const peer = (id: string, load = 0): Peer => ({
    name: `${id}-abc123`, fqdn: '', host: `${id}.local`, addresses: ['10.0.0.2'], port: 4468, seenAt: 0, ageMs: 0,
    record: { version: '0.1.0', id, name: id, services: ['echo'], load, cores: 2, slots: 2, free: 2, queue: 0, printers: [], tokenRequired: false },
  })
  ;(b as any).peers = () => [peer('me'), peer('alpha', 0.5)]
  h.watchPeers(b)
  const events: any[] = []
  h.on((e) => events.push(JSON.parse(e.data)))
  b.emit('up', peer('me'))
  b.emit('up', peer('alpha'))
  b.emit('update', peer('alpha', 0.5), peer('alpha'))
  b.emit('down', peer('alpha', 0.5), 'expired')
  assert.deepEqual(events.map((e) => [e.change, e.peer.id, e.peer.record.load, e.reason]), [
    ['up', 'alpha', 0, undefined], ['update', 'alpha', 0.5, undefined], ['down', 'alpha', 0.5, 'expired'],
  ])
  const now = h.snapshot(new Set(['peer', 'stats']))
  assert.deepEqual(now.map((s) => s.event), ['stats', 'peer'])
  assert.equal(JSON.parse(now[1].data).peer.id, 'alpha')
  h.close()
})
