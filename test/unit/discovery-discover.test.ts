// discover(): when the one-shot look at the LAN returns, with a browser whose answers arrive when
// the test says (real timers; the margins are wide enough for a loaded machine).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { createSocket } from 'node:dgram'
import { discover, type Browser, type BrowserEvents } from '../../src/discovery/browser.js'
import type { Peer } from '../../src/discovery/cache.js'

const peer = (name: string): Peer => ({ name, fqdn: `${name}._rrcloud._tcp.local`, host: `${name}.local`, addresses: ['10.77.0.2'], port: 4468, seenAt: Date.now(), ageMs: 0 } as unknown as Peer)

class FakeBrowser extends EventEmitter<BrowserEvents> implements Browser {
  readonly ready = Promise.resolve()
  readonly known: Peer[] = []
  /** times (ms after creation) of query() calls made by discover() */
  readonly queries: number[] = []
  closed = false
  readonly created = Date.now()
  private readonly timers: NodeJS.Timeout[] = []

  /** peers answering at these times (ms after creation) */
  constructor (answers: Array<[number, string]>) {
    super()
    for (const [at, name] of answers) {
      this.timers.push(setTimeout(() => {
        const p = peer(name)
        this.known.push(p)
        this.emit('up', p)
      }, at))
    }
  }

  peers (): Peer[] { return [...this.known] }
  query (): void { this.queries.push(Date.now() - this.created) }
  async close (): Promise<void> {
    this.closed = true
    for (const t of this.timers) clearTimeout(t)
  }
}

async function run (answers: Array<[number, string]>, opts: { timeoutMs: number, settleMs?: number }) {
  let b!: FakeBrowser
  const started = Date.now()
  const peers = await discover(opts, { createBrowser: () => (b = new FakeBrowser(answers)) })
  return { ms: Date.now() - started, names: peers.map((p) => p.name).sort(), b }
}

test('returns once answers have settled: first answer + settleMs, long before timeoutMs', async () => {
  const r = await run([[30, 'a'], [60, 'b'], [90, 'c']], { timeoutMs: 3000, settleMs: 150 })
  assert.deepEqual(r.names, ['a', 'b', 'c'])
  assert.ok(r.ms >= 90 + 150 - 5, `returned after ${r.ms} ms, before the last answer had settled`)
  assert.ok(r.ms < 1500, `returned after ${r.ms} ms, not early`)
  assert.deepEqual(r.b.queries, [], 'no second query when someone answered')
  assert.ok(r.b.closed)
})

test('a new peer within settleMs restarts the wait: a late one is not cut off', async () => {
  const r = await run([[20, 'a'], [250, 'b']], { timeoutMs: 3000, settleMs: 300 })
  assert.deepEqual(r.names, ['a', 'b'])
  assert.ok(r.ms >= 250 + 300 - 5, `returned after ${r.ms} ms`)
})

test('never waits past timeoutMs, even while peers keep coming', async () => {
  const answers: Array<[number, string]> = [...Array(20).keys()].map((i) => [20 + i * 100, `p${i}`])
  const r = await run(answers, { timeoutMs: 800, settleMs: 150 })
  assert.ok(r.ms >= 795 && r.ms < 1300, `returned after ${r.ms} ms`)
  assert.ok(r.names.length >= 5 && r.names.length <= 10, `${r.names.length} peers`)
})

test('nobody answers: asks again half-way and returns empty after timeoutMs', async () => {
  const r = await run([], { timeoutMs: 600, settleMs: 150 })
  assert.deepEqual(r.names, [])
  assert.ok(r.ms >= 595 && r.ms < 1100, `returned after ${r.ms} ms`)
  assert.equal(r.b.queries.length, 1)
  assert.ok(r.b.queries[0] >= 295 && r.b.queries[0] < 550, `asked again after ${r.b.queries[0]} ms`)
})

test('an answer to the second query is still collected and settles the wait', async () => {
  const r = await run([[1200, 'late']], { timeoutMs: 2000, settleMs: 150 })
  assert.deepEqual(r.names, ['late'])
  assert.equal(r.b.queries.length, 1)
  assert.ok(r.b.queries[0] < 1200, `asked again after ${r.b.queries[0]} ms`)
  assert.ok(r.ms >= 1200 + 150 - 5 && r.ms < 1900, `returned after ${r.ms} ms`)
})

test('settleMs 0 collects for the whole timeoutMs', async () => {
  const r = await run([[20, 'a']], { timeoutMs: 500, settleMs: 0 })
  assert.deepEqual(r.names, ['a'])
  assert.ok(r.ms >= 495, `returned after ${r.ms} ms`)
})

test('answers that arrived while the process was busy past timeoutMs are still read', async () => {
  // the answer comes over a loopback UDP socket (as mDNS answers do) while the event loop is
  // blocked past the deadline: when it runs again, the deadline has passed and the datagram waits
  const sock = createSocket('udp4')
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve))
  const port = sock.address().port
  let b!: FakeBrowser
  const found = discover({ timeoutMs: 300, settleMs: 100 }, {
    createBrowser: () => {
      b = new FakeBrowser([])
      sock.on('message', (m) => {
        const p = peer(m.toString())
        b.known.push(p)
        b.emit('up', p)
      })
      return b
    },
  })
  await new Promise((resolve) => setTimeout(resolve, 20))
  // blocked in the check phase: the next turn of the loop runs the expired timers before it reads
  // the socket, as it does when the process gets the CPU back
  await new Promise<void>((resolve) => setImmediate(() => {
    sock.send('busy', port, '127.0.0.1')
    const until = Date.now() + 600
    while (Date.now() < until) { /* no CPU for the event loop, as under heavy load */ }
    resolve()
  }))
  try {
    assert.deepEqual((await found).map((p) => p.name), ['busy'])
  } finally {
    sock.close()
  }
})
