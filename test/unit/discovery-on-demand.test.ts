// The on-demand browser: when it starts and stops browsing, what its users get meanwhile, with a
// fake browser whose peers answer when the test says (real timers, wide margins).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { createOnDemandBrowser } from '../../src/discovery/on-demand.js'
import type { Browser, BrowserEvents } from '../../src/discovery/browser.js'
import type { Peer } from '../../src/discovery/cache.js'

const peer = (name: string): Peer => ({ name, fqdn: `${name}._rrcloud._tcp.local`, host: `${name}.local`, addresses: ['10.77.0.2'], port: 4468, seenAt: Date.now(), ageMs: 0 } as unknown as Peer)

class FakeBrowser extends EventEmitter<BrowserEvents> implements Browser {
  readonly ready = Promise.resolve()
  readonly known: Peer[] = []
  closed = false
  private readonly timers: NodeJS.Timeout[] = []
  constructor (answers: Array<[number, string]>) {
    super()
    for (const [at, name] of answers) {
      this.timers.push(setTimeout(() => { const p = peer(name); this.known.push(p); this.emit('up', p) }, at))
    }
  }

  peers (): Peer[] { return [...this.known] }
  query (): void {}
  async close (): Promise<void> {
    this.closed = true
    for (const t of this.timers) clearTimeout(t)
  }
}

function fake (answers: Array<[number, string]>, opts: { idleMs?: number, timeoutMs?: number, settleMs?: number } = {}) {
  const made: FakeBrowser[] = []
  const b = createOnDemandBrowser(opts, { createBrowser: () => { const f = new FakeBrowser(answers); made.push(f); return f } })
  return { b, made }
}

test('nothing is browsed until the view is used; peers() starts browsing and answers with what is known', async () => {
  const { b, made } = fake([[30, 'a'], [60, 'b']])
  try {
    await sleep(100)
    assert.equal(made.length, 0, 'no browser before any use')
    assert.equal(b.browsing, false)
    assert.deepEqual(b.peers(), [], 'the first look knows nobody yet')
    assert.equal(made.length, 1)
    const ups: string[] = []
    b.on('up', (p) => ups.push(p.name))
    await sleep(150)
    assert.deepEqual(ups, ['a', 'b'], 'the answers come as up events')
    assert.deepEqual(b.peers().map((p) => p.name), ['a', 'b'])
    assert.equal(made.length, 1, 'one browser for every use')
  } finally {
    await b.close()
  }
})

test('settled(): waits for the answers when browsing starts, at once when it runs already', async () => {
  const { b, made } = fake([[30, 'a'], [80, 'b']], { settleMs: 100, timeoutMs: 2000 })
  try {
    let t = Date.now()
    assert.deepEqual((await b.settled()).map((p) => p.name), ['a', 'b'])
    const first = Date.now() - t
    assert.ok(first >= 150 && first < 1500, `settled after ${first} ms (last answer at 80 + 100 quiet)`)
    t = Date.now()
    assert.deepEqual((await b.settled()).map((p) => p.name), ['a', 'b'])
    assert.ok(Date.now() - t < 50, 'browsing already: no wait')
    assert.equal(made.length, 1)
  } finally {
    await b.close()
  }
})

test('browsing stops idleMs after the last use, its peers leave, and the next use starts afresh', async () => {
  const { b, made } = fake([[10, 'a']], { idleMs: 300 })
  try {
    const downs: string[] = []
    b.on('down', (p, reason) => downs.push(`${p.name} ${reason}`))
    b.peers()
    await sleep(200)
    b.peers() // a use pushes the stop back
    await sleep(200)
    assert.equal(b.browsing, true, 'still browsing 200 ms after the last use')
    await sleep(250)
    assert.equal(b.browsing, false, 'stopped once idle for idleMs')
    assert.equal(made[0].closed, true)
    assert.deepEqual(downs, ['a expired'], 'the peers it followed leave')
    assert.deepEqual(b.peers(), [])
    assert.equal(made.length, 2, 'a use after the stop browses again')
  } finally {
    await b.close()
  }
})

test('hold(): browses for as long as it is held, then idleMs more; releasing twice is harmless', async () => {
  const { b, made } = fake([[10, 'a']], { idleMs: 200 })
  try {
    const release = b.hold()
    const other = b.hold()
    assert.equal(made.length, 1)
    await sleep(400)
    assert.equal(b.browsing, true, 'held: no idle stop')
    release()
    release()
    await sleep(300)
    assert.equal(b.browsing, true, 'still held by the other')
    other()
    await sleep(100)
    assert.equal(b.browsing, true, 'idleMs not over yet')
    await sleep(250)
    assert.equal(b.browsing, false, 'released, then idle for idleMs')
    assert.equal(made[0].closed, true)
  } finally {
    await b.close()
  }
})

test('close(): stops browsing, and later uses do not start it again', async () => {
  const { b, made } = fake([[10, 'a']])
  b.peers()
  await b.close()
  assert.equal(made[0].closed, true)
  assert.deepEqual(b.peers(), [])
  assert.deepEqual(await b.settled(), [])
  assert.equal(made.length, 1)
  await b.close()
})
