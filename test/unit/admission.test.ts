import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createAdmission } from '../../src/node/admission.js'
import { TaskError } from '../../src/node/errors.js'

/** a queue of `max` places, `used` of them taken by tasks */
function queue (max: number, maxWaiting = 8) {
  const q = { used: 0 }
  const a = createAdmission({ maxWaiting }, { free: () => max - q.used, why: () => 'full: try another node' })
  return { q, a }
}
const full = (e: unknown) => e instanceof TaskError && e.kind === 'full'

test('a free place is given at once; a pass holds it until taken over or released', () => {
  const { q, a } = queue(1)
  const p = a.now()
  assert.ok(p)
  assert.equal(a.held(), 1)
  assert.equal(a.now(), undefined, 'the only place is held')
  a.take(p)
  q.used = 1
  assert.equal(a.held(), 0)
  p.release()
  assert.equal(a.held(), 0, 'a pass taken over is not released again')
})

test('requests that find the queue full wait in order and get in as places free; the rest are refused after the wait', async () => {
  const { q, a } = queue(1)
  q.used = 1
  const order: string[] = []
  const first = a.wait(5000).then((p) => { order.push('first'); return p })
  const second = a.wait(5000).then((p) => { order.push('second'); return p })
  const late = a.wait(50)
  await assert.rejects(late, full)
  q.used = 0
  a.wake()
  const p1 = await first
  assert.deepEqual(order, ['first'], 'one place, one request')
  a.take(p1)
  q.used = 1
  q.used = 0
  a.wake()
  await second
  assert.deepEqual(order, ['first', 'second'])
})

test('a released pass lets the next request in; no wait means refused at once; too many waiting are refused at once', async () => {
  const { q, a } = queue(1, 1)
  const p = a.now()!
  const waiting = a.wait(5000)
  await assert.rejects(a.wait(5000), full, 'one may wait')
  await assert.rejects(a.wait(0), full)
  p.release()
  assert.ok(await waiting)
  assert.equal(q.used, 0)
})

test('a request whose client went away leaves the line; close refuses those that wait', async () => {
  const { q, a } = queue(1)
  q.used = 1
  const gone = new AbortController()
  const leaving = a.wait(5000, gone.signal)
  const staying = a.wait(5000)
  gone.abort(new Error('gone'))
  await assert.rejects(leaving, /gone/)
  a.close()
  await assert.rejects(staying, (e) => full(e) && /stopping/.test((e as Error).message))
})
