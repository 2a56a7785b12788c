// Pipelines on one node (loopback, no mDNS): the real tools (openscad, slic3r) and a simulated
// Marlin behind a pty for printrun, driven through the built client (`rrcloud pipe`).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { getJson, testNode, until, type TestNode } from '../helpers/node.js'
import { startSimPty, type SimPty } from '../helpers/pty.js'
import { expectedCommands, printedCommands } from '../helpers/sliced.js'
import { ensureBuilt, run, workdir, type Workdir } from '../fixtures/client/harness.js'

const SAFE = ['M104 S0', 'M140 S0', 'M107', 'M84']

let node: TestNode
let fast: SimPty
let slow: SimPty
let w: Workdir
let s: string

before(async () => {
  ensureBuilt()
  fast = await startSimPty()
  // a print that takes a while: each command 2 ms
  slow = await startSimPty(['--delay-ms', '2'])
  node = await testNode({
    printers: [{ name: 'mk3', path: fast.path }, { name: 'slowpoke', path: slow.path }],
    printerOptions: { settleMs: 50, temperatureIntervalMs: 200, safeTimeoutMs: 1000, reconnectMs: 100 },
  })
  s = `--s=127.0.0.1:${node.port}`
  w = workdir('cube.scad', 'slic3r.ini', 'slow-render.scad', 'ball.scad')
  writeFileSync(join(w.cwd, 'bad.scad'), 'cube([10, 10, 10]\n')
  writeFileSync(join(w.cwd, 'notstl.txt'), 'not a model\n')
  await until(async () => (await getJson(`${node.url}/api/v1/meta`)).printers.every((p: any) => p.state === 'idle'), 10_000, 'the printers to connect')
})
after(async () => {
  await node.stop()
  await Promise.all([fast.stop(), slow.stop()])
  w.remove()
})

// a client that never looks for a node of its own on 127.0.0.1:4468
const rrcloud = (args: string[], timeoutMs = 120_000) => run(w, 'rrcloud', args, { RRCLOUD_LOCAL: 'off' }, timeoutMs)
const pipeline = (id: string) => getJson(`${node.url}/api/v1/pipelines/${id}`)
const idOf = (stdout: string) => /^id: (p\S+)$/m.exec(stdout)?.[1] ?? assert.fail(`no pipeline id in ${stdout}`)
const tasksOf = (service: string) => node.runner.list().filter((t) => t.service === service)
const ended = (id: string, timeoutMs = 60_000) => until(async () => {
  const p = await pipeline(id)
  return p.status !== 'running' ? p : undefined
}, timeoutMs, `pipeline ${id} to end`)
/** until the task of stage n runs on the node */
const stageBusy = (id: string, n: number, timeoutMs = 60_000) => until(async () => {
  const task = (await pipeline(id)).stages[n - 1].task
  return task && node.runner.get(task).status === 'busy'
}, timeoutMs, `stage ${n} to run`)

test('scad -> stl -> gcode -> printer on one node: the printer gets the G-code of the middle stage, kept with -o', async () => {
  const r = await rrcloud(['pipe', s, 'openscad', 'cube.scad', '--', 'slic3r', '--load=slic3r.ini', '-o', 'mid.gcode', '--', 'printrun', '--printer', 'mk3'])
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.stdout, '')
  const gcode = join(w.cwd, 'mid.gcode')
  assert.match(readFileSync(gcode, 'utf8'), /; layer_height = 0\.3/, 'the uploaded config was used')
  assert.deepEqual(printedCommands(fast.log()), expectedCommands(gcode))
  assert.equal(existsSync(join(w.cwd, 'cube.stl')), false, 'only what was asked for is written')
  const [p] = await getJson(`${node.url}/api/v1/pipelines`)
  assert.equal(p.status, 'complete')
  assert.deepEqual(p.stages.map((x: any) => [x.service, x.state]), [['openscad', 'complete'], ['slic3r', 'complete'], ['printrun', 'complete']])
  const print = node.runner.get(p.stages[2].task)
  assert.equal(print.printer, 'mk3')
  assert.equal(print.percent, 100)
  // the G-code reached the printer by digest: the slicing task's output, as the node stored it
  assert.equal(print.in[0].sha256, node.runner.get(p.stages[1].task).outSha256)
})

test('--async prints the id and returns; the pipeline completes; info, log and fetch take its id', async () => {
  const started = Date.now()
  const r = await rrcloud(['pipe', '--async', s, 'openscad', 'cube.scad', '--', 'slic3r', '--load=slic3r.ini'])
  assert.equal(r.code, 0, r.stderr)
  const id = idOf(r.stdout)
  const p = await ended(id)
  assert.equal(p.status, 'complete', p.error)
  assert.ok(Date.now() - started < 60_000)
  const info = await rrcloud(['info', s, id])
  assert.equal(info.code, 0, info.stderr)
  assert.match(info.stdout, /^status: complete$/m)
  assert.match(info.stdout, /^1 +openscad +complete +/m)
  assert.match(info.stdout, /^2 +slic3r +complete +/m)
  const log = await rrcloud(['log', s, id])
  assert.equal(log.code, 0, log.stderr)
  assert.match(log.stdout, /^== stage 1\/2: openscad on .*, task \S+ \(complete\) ==$/m)
  assert.match(log.stdout, /^== stage 2\/2: slic3r on .*\n(.*\n)*.*Exporting G-code|cache hit/m)
  const fetched = await rrcloud(['fetch', s, id, '-o', 'async.gcode'])
  assert.equal(fetched.code, 0, fetched.stderr)
  assert.equal(readFileSync(join(w.cwd, 'async.gcode'), 'utf8'), readFileSync(join(node.dataDir, node.runner.get(p.stages[1].task).out!), 'utf8'))
  const bad = await rrcloud(['pipe', '--async', s, 'openscad', 'cube.scad', '-o', 'x.stl', '--', 'slic3r', '--load=slic3r.ini'])
  assert.equal(bad.code, 2)
  assert.match(bad.stderr, /--async .* writes no output/)
})

test('a failing stage ends the pipeline failed with its log and exit code; the stages after it do not run', async () => {
  const slicing = tasksOf('slic3r').length
  const r = await rrcloud(['pipe', s, 'openscad', 'bad.scad', '--', 'slic3r', '--load=slic3r.ini', '--', 'printrun', '--printer', 'mk3'])
  assert.equal(r.code, 1, r.stderr)
  assert.match(r.stderr, /Parser error|syntax error/i, 'the tool\'s own words')
  assert.match(r.stderr, /pipeline p\S+ on .* failed: stage 1\/3 \(openscad\) failed/)
  assert.equal(tasksOf('slic3r').length, slicing, 'slic3r never ran')

  // a middle stage: slic3r cannot read what echo passed on
  const m = await rrcloud(['pipe', s, 'echo', 'notstl.txt', '--', 'slic3r', '--load=slic3r.ini', '--', 'printrun', '--printer', 'mk3'])
  assert.equal(m.code, 2, `slic3r's own exit code: ${m.stderr}`)
  assert.match(m.stderr, /Unknown file format/)
  assert.match(m.stderr, /stage 2\/3 \(slic3r\) failed/)
  const p = (await getJson(`${node.url}/api/v1/pipelines`)).at(-1)
  assert.deepEqual([p.status, p.exitCode, p.stages.map((x: any) => x.state)], ['failed', 2, ['complete', 'failed', 'cancelled']])
  assert.equal(p.stages[0].outSha256.length, 64, 'a completed stage keeps its output')
  const out = await fetch(`${node.url}/api/v1/pipelines/${p.id}/stages/1/output`)
  assert.equal(await out.text(), 'not a model\n')
})

test('cancel while rendering: the render stops, nothing after it runs', async () => {
  const before = { slic3r: tasksOf('slic3r').length, printrun: tasksOf('printrun').length }
  const id = idOf((await rrcloud(['pipe', '--async', '--no-cache', s, 'openscad', 'slow-render.scad', '--', 'slic3r', '--load=slic3r.ini', '--', 'printrun', '--printer', 'mk3'])).stdout)
  await stageBusy(id, 1)
  const c = await rrcloud(['cancel', s, id])
  assert.equal(c.code, 0, c.stderr)
  assert.match(c.stdout, /^status: cancelled$/m)
  const p = await pipeline(id)
  assert.deepEqual(p.stages.map((x: any) => x.state), ['cancelled', 'cancelled', 'cancelled'])
  assert.equal(node.runner.get(p.stages[0].task).status, 'cancelled')
  assert.deepEqual({ slic3r: tasksOf('slic3r').length, printrun: tasksOf('printrun').length }, before)
})

test('cancel while slicing (POST .../cancel): the slicer stops, the print never starts', async () => {
  const printing = tasksOf('printrun').length
  const id = idOf((await rrcloud(['pipe', '--async', '--no-cache', s, 'openscad', 'ball.scad', '--', 'slic3r', '--load=slic3r.ini', '--', 'printrun', '--printer', 'mk3'])).stdout)
  await stageBusy(id, 2)
  const r = await fetch(`${node.url}/api/v1/pipelines/${id}/cancel`, { method: 'POST' })
  assert.equal(r.status, 200)
  const p = await ended(id)
  assert.equal(p.status, 'cancelled')
  assert.deepEqual(p.stages.map((x: any) => x.state), ['complete', 'cancelled', 'cancelled'])
  assert.equal(node.runner.get(p.stages[1].task).status, 'cancelled')
  assert.equal(tasksOf('printrun').length, printing)
  assert.equal((await fetch(`${node.url}/api/v1/pipelines/${id}/cancel`, { method: 'POST' })).status, 409, 'once')
})

test('cancel while printing (DELETE): the print stops and the printer is made safe', async () => {
  const id = idOf((await rrcloud(['pipe', '--async', s, 'openscad', 'cube.scad', '--', 'slic3r', '--load=slic3r.ini', '--', 'printrun', '--printer', 'slowpoke'])).stdout)
  await stageBusy(id, 3)
  await until(async () => ((await pipeline(id)).stages[2].percent ?? 0) > 1, 20_000, 'printing')
  assert.equal((await fetch(`${node.url}/api/v1/pipelines/${id}`, { method: 'DELETE' })).status, 200)
  const p = await ended(id)
  assert.equal(p.status, 'cancelled')
  assert.equal(p.stages[2].state, 'cancelled')
  assert.ok(p.stages[2].percent < 100)
  assert.deepEqual(printedCommands(slow.log()).slice(-4), SAFE)
})

test('Ctrl-C in a synchronous pipeline cancels it', async () => {
  const { start } = await import('../fixtures/client/harness.js')
  const c = start(w, 'rrcloud', ['pipe', '--no-cache', s, 'openscad', 'slow-render.scad', '--', 'slic3r', '--load=slic3r.ini'], { RRCLOUD_LOCAL: 'off' })
  const id = await until(async () => (await getJson(`${node.url}/api/v1/pipelines`)).find((p: any) => p.status === 'running')?.id, 30_000, 'the pipeline')
  await stageBusy(id, 1)
  c.child.kill('SIGINT')
  const r = await c.done
  assert.equal(r.code, 130, r.stderr)
  assert.match(r.stderr, /cancelling pipeline/)
  assert.equal((await ended(id)).status, 'cancelled')
})

test('POST /api/v1/pipelines: files not held (409 with missing), a refused notifier, a malformed pipeline (400); unknown ids 404', async () => {
  const post = async (body: unknown) => {
    const r = await fetch(`${node.url}/api/v1/pipelines`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    return { status: r.status, body: await r.json() as any }
  }
  const scad = readFileSync(join(w.cwd, 'cube.scad'))
  const { createHash } = await import('node:crypto')
  const h = createHash('sha256').update(scad).digest('hex')
  const stages = [{ service: 'openscad', inputs: [{ sha256: h, path: 'cube.scad' }] }]
  const missing = await post({ stages })
  if (missing.status === 409) {
    assert.deepEqual(missing.body.missing, [h])
    assert.equal((await fetch(`${node.url}/api/v1/blobs/${h}`, { method: 'PUT', body: scad })).status, 201)
  }
  const bad = await post({ stages, notifier: 'http://169.254.169.254/latest' })
  assert.equal(bad.status, 400)
  assert.match(bad.body.error, /notifier refused: 169\.254\.169\.254 is a link-local/)
  assert.equal((await post({ stages, notifier: 'file:///etc/passwd' })).status, 400)
  const second = await post({ stages: [...stages, { service: 'slic3r', inputs: [{ sha256: h }] }] })
  assert.equal(second.status, 400)
  assert.match(second.body.error, /stage 2 \(slic3r\): takes the previous stage's output/)
  assert.equal((await fetch(`${node.url}/api/v1/pipelines/p1-000000`)).status, 404)
  assert.equal((await fetch(`${node.url}/api/v1/pipelines/..%2Fx`)).status, 404)
  assert.equal((await fetch(`${node.url}/api/v1/pipelines/p1-000000/cancel`, { method: 'POST' })).status, 404)
  const made = await post({ stages })
  assert.equal(made.status, 201)
  assert.equal((await getJson(`${node.url}/api/v1/pipelines/${made.body.id}?wait=30`)).status, 'complete')
  assert.equal((await fetch(`${node.url}/api/v1/pipelines/${made.body.id}/stages/2/output`)).status, 404)
})

test('rrcloud print part.scad --slice CONFIG --printer NAME renders, slices and prints as one pipeline; an STL starts at slicing', async () => {
  const before = printedCommands(fast.log()).length
  const r = await rrcloud(['print', s, 'cube.scad', '--slice', 'slic3r.ini', '--printer', 'mk3'])
  assert.equal(r.code, 0, r.stderr)
  const [p] = (await getJson(`${node.url}/api/v1/pipelines`)).sort((a: any, b: any) => b.ctime - a.ctime)
  assert.deepEqual(p.stages.map((x: any) => [x.service, x.state]), [['openscad', 'complete'], ['slic3r', 'complete'], ['printrun', 'complete']])
  assert.ok(printedCommands(fast.log()).length > before + 100, 'the printer got the G-code')

  const stl = await rrcloud(['pipe', s, 'openscad', 'cube.scad', '-o', 'print.stl'])
  assert.equal(stl.code, 0, stl.stderr)
  const r2 = await rrcloud(['print', s, 'print.stl', '--slice', 'slic3r.ini', '--printer', 'mk3'])
  assert.equal(r2.code, 0, r2.stderr)
  const [p2] = (await getJson(`${node.url}/api/v1/pipelines`)).sort((a: any, b: any) => b.ctime - a.ctime)
  assert.deepEqual(p2.stages.map((x: any) => x.service), ['slic3r', 'printrun'])

  const no = await rrcloud(['print', s, 'cube.scad', '--printer', 'mk3'])
  assert.equal(no.code, 2)
  assert.match(no.stderr, /--slice CONFIG/)
})
