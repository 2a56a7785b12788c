// The print farm on one node (loopback, no mDNS): printer groups, the farm states of a printer
// (finished until cleared, autoclear, error), claims that race, and a queue that outlives a restart.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getJson, testNode, until, type TestNode } from '../helpers/node.js'
import { startSimPty, type SimPty } from '../helpers/pty.js'
import type { PrinterSpec } from '../../src/node/node.js'

const FAST = { settleMs: 50, temperatureIntervalMs: 200, safeTimeoutMs: 1000, reconnectMs: 100 }

let dir: string
before(() => { dir = mkdtempSync(join(tmpdir(), 'rrcloud-farm-')) })
after(() => rmSync(dir, { recursive: true, force: true }))

/** A short print whose last line names it, so that the prints on a simulated printer can be counted. */
function gcode (tag: string, moves = 20): string {
  const file = join(dir, `${tag}.gcode`)
  const lines = ['G28', 'G90', ...Array.from({ length: moves }, (_, i) => `G1 X${10 + i} Y${10 + (i % 7)} F3000`), `M117 ${tag} done`]
  writeFileSync(file, `; ${tag}\n${lines.join('\n')}\n`)
  return file
}
const prints = (sim: SimPty, tag: string) => sim.log().filter((l) => l === `M117 ${tag} done`).length

async function farmNode (printers: Array<Omit<PrinterSpec, 'path'> & { sim?: string[] }>, extra: Parameters<typeof testNode>[0] = {}) {
  const sims = await Promise.all(printers.map((p) => startSimPty(p.sim ?? [])))
  const node = await testNode({
    printers: printers.map(({ sim: _, ...p }, i) => ({ ...p, path: sims[i].path })),
    printerOptions: FAST, farm: { everyMs: 200 }, ...extra,
  })
  await until(async () => (await getJson(`${node.url}/api/v1/printers`)).every((p: any) => p.connection === 'idle'), 10000, 'the printers to connect')
  return { node, sims, async stop () { await node.stop(); await Promise.all(sims.map((s) => s.stop())) } }
}

async function queueJob (url: string, fields: Record<string, string>, file: string, headers: Record<string, string> = {}) {
  const form = new FormData()
  for (const [k, v] of Object.entries(fields)) form.append(k, v)
  form.append('file', new Blob([await import('node:fs').then((fs) => fs.readFileSync(file))]), file.split('/').pop())
  const r = await fetch(`${url}/api/v1/queue`, { method: 'POST', body: form, headers: { accept: 'application/json', ...headers } })
  return { status: r.status, body: await r.json() as any, location: r.headers.get('location') }
}
const post = async (url: string, body?: unknown, headers: Record<string, string> = {}) => {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json', ...headers }, body: JSON.stringify(body ?? {}) })
  return { status: r.status, body: await r.json() as any }
}
const printer = async (node: TestNode, name: string) => getJson(`${node.url}/api/v1/printers/${name}`)
const job = async (node: TestNode, id: string) => getJson(`${node.url}/api/v1/queue/${id}`)

test('groups show in /api/v1/printers and meta; copies of a group job wait for the bed to be cleared', async () => {
  const { node, sims, stop } = await farmNode([{ name: 'mk3a', groups: ['mk3', 'petg'], sim: ['--delay-ms', '2'] }])
  try {
    const list = await getJson(`${node.url}/api/v1/printers`)
    assert.equal(list.length, 1)
    assert.deepEqual([list[0].name, list[0].state, list[0].groups, list[0].autoclear], ['mk3a', 'idle', ['mk3', 'petg'], false])
    const meta = await getJson(`${node.url}/api/v1/meta`)
    assert.deepEqual(meta.printers[0].groups, ['mk3', 'petg'])
    assert.equal(meta.printers[0].farmState, 'idle')

    const file = gcode('clear')
    const q = await queueJob(node.url, { group: 'mk3', copies: '2' }, file)
    assert.equal(q.status, 201, JSON.stringify(q.body))
    assert.equal(q.location, `/api/v1/queue/${q.body.id}`)
    assert.equal(q.body.copies.length, 2)
    await until(async () => (await printer(node, 'mk3a')).state === 'printing', 5000, 'the first copy to start')
    const busy = await printer(node, 'mk3a')
    assert.equal(busy.job.file, 'clear.gcode')
    assert.equal(busy.job.job, q.body.id)
    await until(async () => (await printer(node, 'mk3a')).state === 'finished', 15000, 'the first copy to finish')
    await new Promise((resolve) => setTimeout(resolve, 800))
    assert.equal(prints(sims[0], 'clear'), 1, 'the second copy waits for the bed')
    const j = await job(node, q.body.id)
    assert.deepEqual([j.counts.complete, j.counts.queued], [1, 1])
    // a claim is refused while the bed holds the print
    assert.equal((await post(`${node.url}/api/v1/printers/mk3a/claim`)).status, 409)
    const cleared = await post(`${node.url}/api/v1/printers/mk3a/clear`)
    assert.equal(cleared.status, 200)
    await until(async () => (await job(node, q.body.id)).counts.complete === 2, 15000, 'the second copy')
    assert.equal(prints(sims[0], 'clear'), 2)
    assert.equal((await printer(node, 'mk3a')).state, 'finished')
    assert.ok(node.lines.some((l) => /printer mk3a: finished clear\.gcode/.test(l)), node.lines.join('\n'))
  } finally { await stop() }
})

test('autoclear: copies follow one another; a failed print is an error, its copy is not printed again and the next waits', async () => {
  const { node, sims, stop } = await farmNode([
    { name: 'belt', groups: ['belt'], autoclear: true },
    { name: 'bad', groups: ['flaky'], sim: ['--fail-after', '8'] },
  ])
  try {
    const auto = await queueJob(node.url, { group: 'belt', copies: '3' }, gcode('auto'))
    await until(async () => (await job(node, auto.body.id)).counts.complete === 3, 20000, 'three copies on the belt printer')
    assert.equal(prints(sims[0], 'auto'), 3)
    assert.equal((await printer(node, 'belt')).state, 'idle')

    const flaky = await queueJob(node.url, { group: 'flaky', copies: '2' }, gcode('flaky'))
    await until(async () => (await job(node, flaky.body.id)).counts.failed === 1, 15000, 'the copy to fail')
    const p = await printer(node, 'bad')
    assert.equal(p.state, 'error')
    assert.match(p.error, /halted|kill/)
    await new Promise((resolve) => setTimeout(resolve, 800))
    const j = await job(node, flaky.body.id)
    assert.deepEqual([j.counts.failed, j.counts.queued, j.counts.printing], [1, 1, 0], 'the next copy waits, the failed one is not retried')
    assert.match(j.copies[0].error, /printer bad/)
    assert.equal(prints(sims[1], 'flaky'), 0)
  } finally { await stop() }
})

test('many claims at once on an idle printer: exactly one gets it; a print by name cannot slip in before the claimed job', async () => {
  const { node, stop } = await farmNode([{ name: 'mk3a', groups: ['mk3'] }])
  try {
    const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => post(`${node.url}/api/v1/printers/mk3a/claim`, { job: `race-${i}` })))
    const won = replies.filter((r) => r.status === 200)
    assert.equal(won.length, 1, JSON.stringify(replies.map((r) => r.status)))
    assert.equal(replies.filter((r) => r.status === 409).length, 39)
    assert.match(replies.find((r) => r.status === 409)!.body.error, /claimed for another job/)
    const claim = won[0].body.claim as string
    const p = await printer(node, 'mk3a')
    assert.equal(p.state, 'printing')
    assert.equal(p.job.claim, claim)
    // the seed's way of printing, by name, is refused while the printer is claimed
    const form = new FormData()
    form.append('service', 'printrun')
    form.append('printer', 'mk3a')
    form.append('fileIn0', new Blob(['G28\n']), 'a.gcode')
    const direct = await fetch(`${node.url}/api/v1/tasks`, { method: 'POST', body: form, headers: { accept: 'application/json' } })
    assert.equal(direct.status, 409)
    // the claimed job, sent as a print task that names the claim, is accepted once
    const send = async () => {
      const f = new FormData()
      f.append('service', 'printrun')
      f.append('printer', 'mk3a')
      f.append('claim', claim)
      f.append('fileIn0', new Blob(['G28\nG1 X5\n']), 'claimed.gcode')
      return fetch(`${node.url}/api/v1/tasks`, { method: 'POST', body: f, headers: { accept: 'application/json' } })
    }
    const [one, two] = await Promise.all([send(), send()])
    assert.deepEqual([one.status, two.status].sort(), [201, 409])
    const task = (await (one.status === 201 ? one : two).json() as any).id
    assert.deepEqual(await getJson(`${node.url}/api/v1/printers/mk3a/claims/${claim}`), { claim, printer: 'mk3a', pending: false, task })
    assert.equal((await fetch(`${node.url}/api/v1/printers/mk3a/claims/nope`)).status, 404)
  } finally { await stop() }
})

test('the queue, its order and the bed outlive a node restart; rm, move, pause and resume', async () => {
  const before = await startSimPty([])
  let sim = before
  const dataDir = mkdtempSync(join(dir, 'data-'))
  const start = () => testNode({ dataDir, printers: [{ name: 'mk3a', path: sim.path, groups: ['mk3'] }], printerOptions: FAST, farm: { everyMs: 200 }, token: 's3cret' })
  const auth = { authorization: 'Bearer s3cret' }
  let node = await start()
  try {
    await until(async () => (await printer(node, 'mk3a')).connection === 'idle', 10000, 'connected')
    assert.equal((await queueJob(node.url, { group: 'mk3' }, gcode('first'))).status, 401, 'changing the queue needs the token')
    assert.equal((await queueJob(node.url, { group: 'nosuch' }, gcode('first'), auth)).status, 400)
    const first = await queueJob(node.url, { group: 'mk3' }, gcode('first'), auth)
    assert.equal(first.status, 201)
    await until(async () => (await printer(node, 'mk3a')).state === 'finished', 15000, 'the first job to print')
    // three more wait for the bed: the queue is paused meanwhile, and reordered
    const paused = await post(`${node.url}/api/v1/queue/pause`, { group: 'mk3' }, auth)
    assert.deepEqual(paused.body.paused, ['mk3'])
    const a = (await queueJob(node.url, { group: 'mk3', copies: '2' }, gcode('a'), auth)).body
    const b = (await queueJob(node.url, { group: 'mk3' }, gcode('b'), auth)).body
    const c = (await queueJob(node.url, { printer: 'mk3a' }, gcode('c'), auth)).body
    const moved = await post(`${node.url}/api/v1/queue/${c.id}/move`, { to: 1 }, auth)
    assert.equal(moved.status, 200)
    assert.deepEqual(moved.body.map((j: any) => j.id), [c.id, first.body.id, a.id, b.id])
    const rm = await fetch(`${node.url}/api/v1/queue/${b.id}`, { method: 'DELETE', headers: auth })
    assert.equal(rm.status, 200)
    assert.equal((await fetch(`${node.url}/api/v1/queue/${b.id}`)).status, 404)

    await node.close()
    // the board resets with the port: a new simulator on the same port
    await before.stop({ keepDir: true })
    sim = await startSimPty([], { dir: before.dir })
    node = await start()
    const after = await getJson(`${node.url}/api/v1/queue`)
    assert.deepEqual(after.map((j: any) => [j.id, j.position, j.paused]), [[c.id, 1, false], [first.body.id, 2, true], [a.id, 3, true]], 'a pause of a group holds the jobs for that group')
    await until(async () => (await printer(node, 'mk3a')).connection === 'idle', 10000, 'connected again')
    assert.equal((await printer(node, 'mk3a')).state, 'finished', 'the bed still holds the first print')
    assert.deepEqual((await post(`${node.url}/api/v1/queue/resume`, {}, auth)).body.paused, [])
    assert.equal((await post(`${node.url}/api/v1/printers/mk3a/clear`)).status, 401)
    assert.equal((await post(`${node.url}/api/v1/printers/mk3a/clear`, {}, auth)).status, 200)
    // c (moved to the front) prints before a
    await until(async () => (await job(node, c.id)).counts.complete === 1, 15000, 'job c')
    assert.equal(prints(sim, 'a'), 0)
    for (let i = 1; i <= 2; i++) {
      await post(`${node.url}/api/v1/printers/mk3a/clear`, {}, auth)
      await until(async () => (await job(node, a.id)).counts.complete === i, 15000, `copy ${i} of a`)
    }
    assert.deepEqual([prints(before, 'first'), prints(sim, 'c'), prints(sim, 'a'), prints(sim, 'b')], [1, 1, 2, 0])
  } finally {
    await node.stop()
    await sim.stop()
    rmSync(before.dir, { recursive: true, force: true })
  }
})
