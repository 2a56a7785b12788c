// The client's choice of node among several, on loopback without mDNS (RRCLOUD_MDNS=off): the
// nodes named in rrcloudrc are asked for their load and ranked, not tried in the order written;
// a node on this machine (RRCLOUD_LOCAL) is listed first and wins a tie; `rrcloud peers` shows them
// all, the unreachable ones with the reason. Multi-host discovery over mDNS is in test/lan.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { getJson, post, testNode, until, type TestNode } from '../helpers/node.js'
import { ensureBuilt, run, workdir, type Workdir } from '../fixtures/client/harness.js'

let busy: TestNode
let idle: TestNode
let w: Workdir
const dead = 9 // discard: nothing listens on 127.0.0.1:9
const at = (n: TestNode) => `127.0.0.1:${n.port}`

before(async () => {
  ensureBuilt()
  ;[busy, idle] = await Promise.all([testNode({ slots: 1, name: 'busy' }), testNode({ slots: 2, name: 'idle' })])
  w = workdir()
  writeFileSync(join(w.cwd, 'one.txt'), '0.2\n')
})
after(async () => {
  await Promise.all([busy.stop(), idle.stop()])
  w.remove()
})

interface PeerView { name: string; url: string; port: number; free: number; slots: number; queue: number; services: string[]; local: boolean; via: string; error?: string }

async function peers (env: NodeJS.ProcessEnv = {}): Promise<PeerView[]> {
  const r = await run(w, 'run.js', ['peers', '--json'], env)
  assert.equal(r.code, 0, r.stderr)
  return JSON.parse(r.stdout)
}

const nodeOf = async (id: string): Promise<TestNode | undefined> =>
  [busy, idle].find((n) => n.runner.list().some((t) => t.id === id))

test('tasks go to the node with free slots, not to the first one rrcloudrc names', async () => {
  const long = await post(`http://${at(busy)}`, { service: 'slow' }, [['fileIn0', '30\n', 'in.txt']])
  assert.equal(long.status, 201)
  await until(async () => (await getJson(`http://${at(busy)}/api/v1/meta`)).free === 0, 10_000, 'busy to run its task')
  writeFileSync(join(w.cwd, 'rrcloudrc'), `servers = ${at(busy)}, ${at(idle)}\n`)
  try {
    const list = await peers()
    assert.deepEqual(list.map((p) => p.port).sort(), [busy.port, idle.port].sort())
    const b = list.find((p) => p.port === busy.port)!
    assert.equal(b.free, 0)
    assert.equal(b.slots, 1)
    assert.equal(b.via, 'static')
    assert.ok(b.services.includes('slow'), `services ${b.services}`)
    const i = list.find((p) => p.port === idle.port)!
    assert.deepEqual([i.free, i.slots], [2, 2])

    for (let k = 0; k < 2; k++) {
      const r = await run(w, 'run.js', ['slow', 'one.txt'])
      const id = /^id: (\S+)$/m.exec(r.stdout)?.[1]
      assert.ok(id, `${r.stdout} ${r.stderr}`)
      assert.equal(await nodeOf(id), idle, 'the idle node takes it')
    }
    const table = await run(w, 'run.js', ['peers'])
    assert.match(table.stdout, /^NAME +HOST +ADDRESS +SERVICES +LOAD +FREE\/SLOTS +QUEUE +PRINTERS +VERSION +SEEN$/m)
    assert.match(table.stdout, new RegExp(`127\\.0\\.0\\.1:${busy.port} .* 0/1 `))
  } finally {
    writeFileSync(join(w.cwd, 'rrcloudrc'), '')
    await fetch(`http://${at(busy)}/api/v1/tasks/${long.body.id}`, { method: 'DELETE' })
  }
})

test('the node on this machine is listed first; an unreachable named node is shown as such', async () => {
  writeFileSync(join(w.cwd, 'rrcloudrc'), `servers = 127.0.0.1:${dead}, ${at(busy)}\n`)
  try {
    await until(async () => (await getJson(`http://${at(busy)}/api/v1/meta`)).free === 1, 10_000, 'busy to be free again')
    await until(async () => (await getJson(`http://${at(idle)}/api/v1/meta`)).free === 2, 10_000, 'idle to be free again')
    const env = { RRCLOUD_LOCAL: at(idle) }
    const list = await peers(env)
    assert.equal(list.length, 3)
    assert.equal(list[0].port, idle.port)
    assert.equal(list[0].local, true)
    assert.equal(list[0].via, 'local')
    const gone = list.find((p) => p.port === dead)!
    assert.match(gone.error ?? '', /ECONNREFUSED|refused/)
    const r = await run(w, 'run.js', ['slow', 'one.txt'], env)
    const id = /^id: (\S+)$/m.exec(r.stdout)?.[1]
    assert.ok(id, r.stderr)
    assert.equal(await nodeOf(id), idle)
    // a bad RRCLOUD_LOCAL is named
    const bad = await run(w, 'run.js', ['peers'], { RRCLOUD_LOCAL: 'no such:host:1' })
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /RRCLOUD_LOCAL=no such:host:1: not a node address/)
  } finally {
    writeFileSync(join(w.cwd, 'rrcloudrc'), '')
  }
})

test('nothing found: says where it looked and how to start a node', async () => {
  const r = await run(w, 'run.js', ['slow', 'one.txt'], { RRCLOUD_LOCAL: 'off' })
  assert.equal(r.code, 3)
  assert.match(r.stderr, /no rrcloud node found; looked at: not on this machine \(RRCLOUD_LOCAL=off\), not mDNS \(RRCLOUD_MDNS is off\), no --s, no (servers for it in )?rrcloudrc \(\S+rrcloudrc\)\. Start one/)
  assert.match(r.stderr, /rrcloud node/)
  const p = await run(w, 'run.js', ['peers'], { RRCLOUD_LOCAL: 'off' })
  assert.equal(p.code, 0)
  assert.match(p.stdout, /no nodes found/)
})
