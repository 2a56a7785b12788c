import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getJson, testNode, until, waitTask } from '../helpers/node.js'
import { startSimPty, type SimPty } from '../helpers/pty.js'
import { compareDelivery, expectedCommands, printedCommands, sliceCube } from '../helpers/sliced.js'

let dir: string
let gcode: string
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'rrcloud-nodeprint-'))
  gcode = sliceCube(dir)
})
after(() => rmSync(dir, { recursive: true, force: true }))

async function postPrint (url: string, fields: Record<string, string>, file = gcode) {
  const form = new FormData()
  form.append('service', 'printrun')
  for (const [k, v] of Object.entries(fields)) form.append(k, v)
  form.append('fileIn0', new Blob([readFileSync(file)]), 'cube.gcode')
  const r = await fetch(`${url}/api/v1/tasks`, { method: 'POST', body: form })
  return { status: r.status, body: await r.json() as any }
}

async function printerNode (simArgs: string[] = []) {
  const sim = await startSimPty(simArgs)
  const node = await testNode({ printers: [{ name: 'mk3', path: sim.path }], printerOptions: { settleMs: 50, temperatureIntervalMs: 200 } })
  return { sim, node, async stop () { await node.stop(); await sim.stop() } }
}

test('a print through the node: every line reaches the firmware once and in order; progress is part of the task', async () => {
  const { sim, node, stop } = await printerNode(['--corrupt', '0.01', '--busy', '0.01'])
  try {
    const meta = await getJson(`${node.url}/api/v1/meta`)
    assert.ok(meta.services.split(',').includes('printrun'))
    await until(async () => (await getJson(`${node.url}/api/v1/meta`)).printers[0].state === 'idle', 10000, 'the printer to connect')
    assert.deepEqual((await getJson(`${node.url}/api/v1/meta`)).printers.map((p: any) => [p.name, p.port]), [['mk3', sim.path]])
    const { status, body: t } = await postPrint(node.url, {})
    assert.equal(status, 201, JSON.stringify(t))
    assert.equal(t.printer, 'mk3', 'the only printer is chosen when none is named')
    const done = await waitTask(node.url, t.id, 60000)
    assert.equal(done.status, 'complete', done.error)
    const expected = expectedCommands(gcode)
    assert.equal(done.percent, 100)
    assert.equal(done.linesSent, expected.length)
    assert.deepEqual(compareDelivery(expected, printedCommands(sim.log())), { expected: expected.length, received: expected.length, missing: 0, doubled: 0, inOrder: true })
    const info = await (await fetch(`${node.url}/?service=info&id=${t.id}`)).text()
    assert.match(info, /^percent: 100$/m)
    assert.match(info, /^linesSent: \d+$/m)
    assert.match(info, /^temperatures: T:/m)
  } finally { await stop() }
})

test('one job per printer: a second print waits as queued and runs after the first; by port path as in the seed', async () => {
  const { sim, node, stop } = await printerNode(['--delay-ms', '1'])
  try {
    const a = (await postPrint(node.url, { printer: 'mk3' })).body
    const b = (await postPrint(node.url, { printer: sim.path })).body
    assert.equal(b.printer, 'mk3')
    await until(async () => (await getJson(`${node.url}/api/v1/tasks/${a.id}`)).status === 'busy', 10000, 'first print busy')
    assert.equal((await getJson(`${node.url}/api/v1/tasks/${b.id}`)).status, 'queued')
    const meta = await getJson(`${node.url}/api/v1/meta`)
    assert.equal(meta.free, meta.slots, 'a print does not take a CPU slot')
    assert.equal((await waitTask(node.url, a.id, 90000)).status, 'complete')
    assert.equal((await waitTask(node.url, b.id, 90000)).status, 'complete')
    const expected = expectedCommands(gcode)
    assert.equal(printedCommands(sim.log()).length, expected.length * 2)
  } finally { await stop() }
})

test('pause stops sending, resume continues, cancel makes the printer safe', async () => {
  const { sim, node, stop } = await printerNode(['--delay-ms', '2'])
  try {
    const { body: t } = await postPrint(node.url, {})
    await until(async () => ((await getJson(`${node.url}/api/v1/tasks/${t.id}`)).linesSent ?? 0) > 50, 15000, 'printing')
    const p = await (await fetch(`${node.url}/api/v1/tasks/${t.id}/pause`, { method: 'POST' })).json() as any
    assert.equal(p.status, 'paused')
    await new Promise((r) => setTimeout(r, 300))
    const n = printedCommands(sim.log()).length
    await new Promise((r) => setTimeout(r, 700))
    assert.equal(printedCommands(sim.log()).length, n, 'nothing is sent while paused')
    await fetch(`${node.url}/api/v1/tasks/${t.id}/resume`, { method: 'POST' })
    await until(() => printedCommands(sim.log()).length > n + 20, 5000, 'printing again')
    await fetch(`${node.url}/api/v1/tasks/${t.id}`, { method: 'DELETE' })
    const done = await waitTask(node.url, t.id, 15000)
    assert.equal(done.status, 'cancelled')
    assert.deepEqual(printedCommands(sim.log()).slice(-4), ['M104 S0', 'M140 S0', 'M107', 'M84'])
  } finally { await stop() }
})

test('a printer that hangs up mid-print fails the task with the reason', async () => {
  const { node, stop } = await printerNode(['--hangup-after', '200'])
  try {
    const { body: t } = await postPrint(node.url, {})
    const done = await waitTask(node.url, t.id, 30000)
    assert.equal(done.status, 'failed')
    assert.match(done.error, /^printer mk3: .*(disconnect|closed|hung up)/i)
    const log = await (await fetch(`${node.url}/api/v1/tasks/${t.id}/log`)).text()
    assert.match(log, /^failed: printer mk3/m)
  } finally { await stop() }
})

test('printers are named clearly: unknown printer 400 with the list; a node without printers does not offer printrun', async () => {
  const { node, stop } = await printerNode()
  try {
    const r = await postPrint(node.url, { printer: 'ender' })
    assert.equal(r.status, 400)
    assert.match(r.body.error, /no printer ender on this node; it has mk3 \(/)
    assert.deepEqual(r.body.printers, ['mk3'])
  } finally { await stop() }
  const plain = await testNode()
  try {
    const r = await postPrint(plain.url, {})
    assert.equal(r.status, 400)
    assert.match(r.body.error, /unknown service printrun \(not offered here: no printer attached/)
  } finally { await plain.stop() }
})

test('a file that is not G-code is refused before it reaches the printer', async () => {
  const { sim, node, stop } = await printerNode()
  try {
    for (const [content, why] of [['solid cube\n  facet normal 0 0 1\n', /line 1 is not G-code: "solid cube"/], [Buffer.from([0x50, 0, 1, 2]), /binary/], ['', /empty/]] as const) {
      const form = new FormData()
      form.append('service', 'printrun')
      form.append('fileIn0', new Blob([content]), 'model.gcode')
      const r = await fetch(`${node.url}/api/v1/tasks`, { method: 'POST', body: form })
      assert.equal(r.status, 400)
      assert.match(((await r.json()) as any).error, why)
    }
    assert.equal((await getJson(`${node.url}/api/v1/tasks`)).length, 0)
    assert.deepEqual(printedCommands(sim.log()), [])
  } finally { await stop() }
})
