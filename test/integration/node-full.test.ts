// A node whose queue is full (--max-queue) refuses new tasks with 503 and a reason, in the seed's
// API and in /api/v1, keeps what it already accepted, and the client says so or goes elsewhere.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { post, testNode, until, getJson, type TestNode } from '../helpers/node.js'
import { ensureBuilt, run, workdir, type Workdir } from '../fixtures/client/harness.js'

let full: TestNode
let other: TestNode
let w: Workdir
const base = (n: TestNode) => `http://127.0.0.1:${n.port}`

before(async () => {
  ensureBuilt()
  ;[full, other] = await Promise.all([testNode({ slots: 1, maxQueue: 1 }), testNode({ slots: 1 })])
  w = workdir()
  writeFileSync(join(w.cwd, 'one.txt'), '0.1\n')
})
after(async () => {
  await Promise.all([full.stop(), other.stop()])
  w.remove()
})

test('beyond --max-queue a task gets 503 with the reason; accepted tasks stay; the client goes to another node', async () => {
  const running = await post(base(full), { service: 'slow' }, [['fileIn0', '30\n', 'a.txt']])
  const waiting = await post(base(full), { service: 'slow' }, [['fileIn0', '0.1\n', 'b.txt']])
  assert.deepEqual([running.status, waiting.status], [201, 201])
  await until(() => full.runner.stats().running === 1, 10_000, 'one running')

  const refused = await post(base(full), { service: 'slow' }, [['fileIn0', '1\n', 'c.txt']])
  assert.equal(refused.status, 503)
  assert.match(refused.body.error, /^full: 1 tasks wait for 1 slot\(s\) here \(--max-queue 1\)/)
  const form = new FormData()
  form.append('service', 'echo')
  form.append('fileIn0', 'x')
  const seed = await fetch(`${base(full)}/`, { method: 'POST', body: form })
  assert.equal(seed.status, 503)
  assert.match(await seed.text(), /full/)
  assert.equal(full.runner.list().length, 2, 'nothing was added')
  assert.equal((await getJson(`${base(full)}/api/v1/tasks/${waiting.body.id}`)).status, 'queued')

  const alone = await run(w, 'run.js', [`--s=127.0.0.1:${full.port}`, 'slow', 'one.txt'])
  assert.equal(alone.code, 3)
  assert.match(alone.stderr, /failed \(503\): full: /)
  writeFileSync(join(w.cwd, 'rrcloudrc'), `servers = 127.0.0.1:${full.port}, 127.0.0.1:${other.port}\n`)
  try {
    const r = await run(w, 'run.js', ['slow', 'one.txt'])
    const id = /^id: (\S+)$/m.exec(r.stdout)?.[1]
    assert.ok(id, r.stderr)
    assert.ok(other.runner.list().some((t) => t.id === id), 'the other node took it')
  } finally {
    writeFileSync(join(w.cwd, 'rrcloudrc'), '')
    await fetch(`${base(full)}/api/v1/tasks/${running.body.id}`, { method: 'DELETE' })
  }
})

test('a task that finds the queue full waits, unread, for a place: taken once one frees within --queue-wait, else 503 on a connection kept open', async () => {
  const node = await testNode({ slots: 1, maxQueue: 1, queueWaitMs: 8000 })
  try {
    const running = await post(base(node), { service: 'slow' }, [['fileIn0', '1\n', 'a.txt']])
    const waiting = await post(base(node), { service: 'slow' }, [['fileIn0', '0.1\n', 'b.txt']])
    assert.deepEqual([running.status, waiting.status], [201, 201])
    const t0 = Date.now()
    // the first ends within a second or two, the second starts, and its place in the queue goes to this one
    const third = await post(base(node), { service: 'slow' }, [['fileIn0', '0.1\n', 'c.txt']])
    assert.equal(third.status, 201, JSON.stringify(third.body))
    assert.ok(Date.now() - t0 > 300, 'it waited for a place')
    assert.equal((await getJson(`${base(node)}/api/v1/tasks/${running.body.id}`)).status, 'complete')
  } finally {
    await node.stop()
  }

  const impatient = await testNode({ slots: 1, maxQueue: 1, queueWaitMs: 300 })
  try {
    await post(base(impatient), { service: 'slow' }, [['fileIn0', '30\n', 'a.txt']])
    await post(base(impatient), { service: 'slow' }, [['fileIn0', '30\n', 'b.txt']])
    const t0 = Date.now()
    const r = await fetch(`${base(impatient)}/api/v1/tasks`, { method: 'POST', body: (() => { const f = new FormData(); f.append('service', 'slow'); f.append('fileIn0', new Blob(['1\n']), 'c.txt'); return f })() })
    assert.equal(r.status, 503)
    assert.ok(Date.now() - t0 >= 250, 'refused after the wait')
    assert.notEqual(r.headers.get('connection'), 'close', 'a small body is dropped and the connection kept')
    assert.match(((await r.json()) as { error: string }).error, /^full: /)
    assert.equal(impatient.runner.list().length, 2, 'nothing was added')
  } finally {
    await impatient.stop()
  }
})

test('under a sustained load a full queue refuses no one who gets a place: every waiting request is taken as places free', async () => {
  const node = await testNode({ slots: 1, maxQueue: 2, queueWaitMs: 20_000 })
  try {
    const statuses: number[] = []
    await Promise.all(Array.from({ length: 8 }, async (_, c) => {
      for (let i = 0; i < 4; i++) statuses.push((await post(base(node), { service: 'echo' }, [['fileIn0', `client ${c} task ${i}\n`, 'a.txt']])).status)
    }))
    assert.deepEqual([...new Set(statuses)], [201], `statuses: ${statuses.join(' ')}`)
    await node.runner.idle()
    assert.equal(node.runner.list().filter((t) => t.status === 'complete').length, 32)
  } finally {
    await node.stop()
  }
})
