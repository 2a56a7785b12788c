// GET /api/v1/tasks/:id?wait=SECONDS: the node answers once the task ends, or after SECONDS with the
// task as it is then; without wait it answers at once, as before.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { post, sleep, testNode, waitTask, type TestNode } from '../helpers/node.js'

let node: TestNode
let base: string

before(async () => {
  node = await testNode()
  base = node.url
})
after(() => node.stop())

/** A slow task (the test service sleeps for the seconds in its input). */
async function slow (seconds: number): Promise<string> {
  const r = await post(base, { service: 'slow' }, [['fileIn0', String(seconds), 'in.txt']])
  assert.equal(r.status, 201, JSON.stringify(r.body))
  return r.body.id
}

/** GET with timing: the status, the task, the header that says the node waits, and how long it took. */
async function get (path: string) {
  const started = Date.now()
  const r = await fetch(`${base}${path}`, { headers: { accept: 'application/json' } })
  const body = await r.json() as any
  return { status: r.status, body, maxWait: r.headers.get('x-rrcloud-max-wait'), ms: Date.now() - started }
}

test('wait answers as soon as the task ends, not after the seconds asked for', async () => {
  const id = await slow(1)
  const r = await get(`/api/v1/tasks/${id}?wait=20`)
  assert.equal(r.status, 200)
  assert.equal(r.body.id, id)
  assert.equal(r.body.status, 'complete')
  assert.equal(r.maxWait, '60')
  assert.ok(r.ms >= 700, `answered after ${r.ms} ms, before the 1 s task could end`)
  assert.ok(r.ms < 10000, `answered after ${r.ms} ms: it waited for the timeout, not for the task`)
})

test('after the seconds asked for, the task as it is then (busy), not an error', async () => {
  const id = await slow(4)
  const r = await get(`/api/v1/tasks/${id}?wait=0.5`)
  assert.equal(r.status, 200)
  assert.ok(['queued', 'busy'].includes(r.body.status), r.body.status)
  assert.ok(r.ms >= 450 && r.ms < 3000, `answered after ${r.ms} ms, not about 500 ms`)
  const c = await fetch(`${base}/api/v1/tasks/${id}/cancel`, { method: 'POST' })
  assert.equal(c.status, 200)
  assert.equal((await waitTask(base, id)).status, 'cancelled')
})

test('a task cancelled while a client waits: the wait answers with cancelled at once', async () => {
  const id = await slow(30)
  const waiting = get(`/api/v1/tasks/${id}?wait=30`)
  await sleep(300)
  const cancelledAt = Date.now()
  const c = await fetch(`${base}/api/v1/tasks/${id}/cancel`, { method: 'POST' })
  assert.equal(c.status, 200)
  const r = await waiting
  assert.equal(r.body.status, 'cancelled')
  assert.ok(Date.now() - cancelledAt < 5000, 'the wait went on after the task was cancelled')
})

test('a task that has already ended, or no wait: answered at once', async () => {
  const id = await slow(0)
  const done = await waitTask(base, id)
  assert.equal(done.status, 'complete')
  const r = await get(`/api/v1/tasks/${id}?wait=30`)
  assert.equal(r.body.status, 'complete')
  assert.ok(r.ms < 1000, `answered after ${r.ms} ms`)
  const busy = await slow(3)
  const now = await get(`/api/v1/tasks/${busy}`)
  assert.ok(['queued', 'busy'].includes(now.body.status))
  assert.ok(now.ms < 1000, `answered after ${now.ms} ms without wait`)
  await fetch(`${base}/api/v1/tasks/${busy}/cancel`, { method: 'POST' })
})

test('a bad wait is a 400 that says what to give; an unknown task a 404', async () => {
  const id = await slow(0)
  for (const w of ['abc', '-1']) {
    const r = await get(`/api/v1/tasks/${id}?wait=${w}`)
    assert.equal(r.status, 400, w)
    assert.match(r.body.error, /seconds to wait/)
  }
  const missing = await get('/api/v1/tasks/1361982308-837500?wait=5')
  assert.equal(missing.status, 404)
  assert.ok(missing.ms < 1000)
  await waitTask(base, id)
})

test('a client that hangs up while waiting leaves no listener behind', async () => {
  const id = await slow(5)
  await sleep(100)
  const before = node.runner.events.listenerCount('task')
  const req = request(`${base}/api/v1/tasks/${id}?wait=30`, { headers: { accept: 'application/json' } })
  req.on('error', () => {})
  req.end()
  const listening = async () => {
    for (let i = 0; i < 50 && node.runner.events.listenerCount('task') === before; i++) await sleep(20)
    return node.runner.events.listenerCount('task')
  }
  assert.equal(await listening(), before + 1, 'the waiting request did not listen for the task')
  req.destroy()
  for (let i = 0; i < 50 && node.runner.events.listenerCount('task') !== before; i++) await sleep(20)
  assert.equal(node.runner.events.listenerCount('task'), before)
  await fetch(`${base}/api/v1/tasks/${id}/cancel`, { method: 'POST' })
  await waitTask(base, id)
})
