import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getJson, testNode, until, waitTask } from '../helpers/node.js'
import { startSimPty, type SimPty } from '../helpers/pty.js'
import { compareDelivery, expectedCommands, printedCommands, sliceCube } from '../helpers/sliced.js'
import { startCli } from '../helpers/cli-node.js'

const SAFE = ['M104 S0', 'M140 S0', 'M107', 'M84']
const task = (url: string, id: string) => getJson(`${url}/api/v1/tasks/${id}`)

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

async function printerNode (simArgs: string[] = [], extra: Parameters<typeof testNode>[0] = {}) {
  const sim = await startSimPty(simArgs)
  const node = await testNode({ printers: [{ name: 'mk3', path: sim.path }], printerOptions: { settleMs: 50, temperatureIntervalMs: 200, safeTimeoutMs: 1000, reconnectMs: 100 }, ...extra })
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
    // the pause is in effect once the firmware has been told to finish its moves
    await until(() => printedCommands(sim.log()).at(-1) === 'M400', 5000, 'M400')
    const n = printedCommands(sim.log()).length
    const polls = sim.log().filter((c) => c === 'M105').length
    await until(() => sim.log().filter((c) => c === 'M105').length >= polls + 3, 5000, 'temperature polls while paused')
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

test('node stop during a heat-up on firmware without EMERGENCY_PARSER: the printer is made safe first, at once', async () => {
  const { sim, node, stop } = await printerNode(['--heat-ms', '60000', '--no-emergency-parser'])
  const file = join(dir, 'heat.gcode')
  writeFileSync(file, 'M140 S60\nM104 S200\nM109 S200\nG28\nG1 X10 Y10\n')
  try {
    const { body: t } = await postPrint(node.url, {}, file)
    await until(() => sim.log().includes('M109 S200'), 10000, 'M109')
    const t0 = Date.now()
    await node.close()
    const ms = Date.now() - t0
    assert.ok(ms < 3000, `stopped in ${ms} ms`)
    await until(() => sim.received().includes('M112'), 2000, 'M112')
    const rx = sim.received()
    assert.deepEqual(rx.slice(rx.findIndex((l) => l.includes('M109 S200')) + 1), ['M108', ...SAFE, 'M112'])
    const again = await testNode({ dataDir: node.dataDir })
    try {
      const ended = (await getJson(`${again.url}/api/v1/tasks/${t.id}`))
      assert.equal(ended.status, 'cancelled')
      assert.match(ended.error, /node stopped/)
    } finally { await again.close() }
  } finally { await stop() }
})

test('SIGTERM to `rrcloud node` mid-print: heaters, fan and motors off before it exits', async () => {
  const sim = await startSimPty(['--delay-ms', '2'])
  const dataDir = mkdtempSync(join(tmpdir(), 'rrcloud-nodeprint-cli-'))
  const { proc, url, out } = await startCli(dataDir, ['--printer', `mk3=${sim.path}`])
  try {
    await until(async () => (await getJson(`${url}/api/v1/meta`)).printers[0].state === 'idle', 10000, 'the printer to connect')
    const { body: t } = await postPrint(url, {})
    await until(() => printedCommands(sim.log()).length > 100, 15000, 'printing')
    const t0 = Date.now()
    proc.kill('SIGTERM')
    const [code] = await once(proc, 'exit')
    assert.equal(code, 0, out.join('\n'))
    assert.ok(Date.now() - t0 < 5000, `exited in ${Date.now() - t0} ms`)
    await until(() => printedCommands(sim.log()).slice(-4).join() === SAFE.join(), 3000, 'the safety commands')
    const sent = printedCommands(sim.log()).slice(0, -4)
    assert.deepEqual(sent, expectedCommands(gcode).slice(0, sent.length), 'the start of the file, then the safety commands')
    assert.ok(out.some((l) => l.includes(`task ${t.id} cancelled`)), out.join('\n'))
  } finally {
    if (proc.exitCode === null) proc.kill('SIGKILL')
    await sim.stop()
    rmSync(dataDir, { recursive: true, force: true })
  }
})

test('estop: POST /api/v1/printers/:name/estop sends M112 at once, needs the token, and fails the print', async () => {
  const { sim, node, stop } = await printerNode(['--heat-ms', '30000', '--no-emergency-parser'], { token: 's3cret' })
  const file = join(dir, 'heat-estop.gcode')
  writeFileSync(file, 'M104 S200\nM109 S200\nG28\n')
  try {
    const auth = { authorization: 'Bearer s3cret' }
    const form = new FormData()
    form.append('service', 'printrun')
    form.append('fileIn0', new Blob([readFileSync(file)]), 'heat.gcode')
    const t = await (await fetch(`${node.url}/api/v1/tasks`, { method: 'POST', body: form, headers: auth })).json() as any
    await until(() => sim.log().includes('M109 S200'), 10000, 'M109')
    assert.equal((await fetch(`${node.url}/api/v1/printers/mk3/estop`, { method: 'POST' })).status, 401)
    assert.ok(!sim.received().includes('M112'))
    assert.equal((await fetch(`${node.url}/api/v1/printers/ender/estop`, { method: 'POST', headers: auth })).status, 404)
    const r = await fetch(`${node.url}/api/v1/printers/mk3/estop`, { method: 'POST', headers: { ...auth, accept: 'application/json' } })
    assert.equal(r.status, 200)
    assert.equal(((await r.json()) as any).name, 'mk3')
    await until(() => sim.received().includes('M112'), 1000, 'M112')
    const done = await waitTask(node.url, t.id, 10000)
    assert.equal(done.status, 'failed')
    assert.match(done.error, /emergency stop/)
    const meta = await getJson(`${node.url}/api/v1/meta`)
    assert.equal(meta.printers[0].state, 'halted')
  } finally { await stop() }
})

test('//action:pause and //action:resume from the printer pause and resume the task; a halted printer is not handed the next job', async () => {
  const { sim, node, stop } = await printerNode(['--delay-ms', '1'])
  try {
    const a = (await postPrint(node.url, {})).body
    const b = (await postPrint(node.url, {})).body
    await until(() => printedCommands(sim.log()).length > 100, 15000, 'printing')
    sim.say('//action:pause')
    await until(async () => (await task(node.url, a.id)).status === 'paused', 5000, 'the task to pause')
    sim.say('//action:resume')
    await until(async () => (await task(node.url, a.id)).status === 'busy', 5000, 'the task to resume')
    const n = printedCommands(sim.log()).length
    await until(() => printedCommands(sim.log()).length > n + 20, 5000, 'printing again')
    sim.say('!!')
    const failed = await waitTask(node.url, a.id, 15000)
    assert.equal(failed.status, 'failed')
    assert.match(failed.error, /firmware halted/)
    const next = await waitTask(node.url, b.id, 15000)
    assert.equal(next.status, 'failed')
    assert.match(next.error, /has halted .*reset it/)
    const numbered = sim.received().filter((l) => l.startsWith('N'))
    assert.ok(!numbered.slice(-3).some((l) => /^N0 M110/.test(l)), 'the next job never started on the halted printer')
  } finally { await stop() }
})

test('an unplugged printer shows as disconnected and is reconnected when it comes back', async () => {
  const { sim, node, stop } = await printerNode()
  let again: SimPty | undefined
  try {
    const state = async () => (await getJson(`${node.url}/api/v1/meta`)).printers[0].state
    await until(async () => await state() === 'idle', 10000, 'connected')
    await sim.stop({ keepDir: true })
    await until(async () => await state() === 'disconnected', 5000, 'disconnected')
    again = await startSimPty([], { dir: sim.dir })
    await until(async () => await state() === 'idle', 10000, 'reconnected')
    assert.ok(node.lines.some((l) => /printer mk3: disconnected/.test(l)), node.lines.join('\n'))
    const { body: t } = await postPrint(node.url, {})
    assert.equal((await waitTask(node.url, t.id, 60000)).status, 'complete')
  } finally {
    await node.stop()
    await again?.stop()
    rmSync(sim.dir, { recursive: true, force: true })
  }
})
