// Pipelines across a LAN of network namespaces: one node renders (openscad only), two slice
// (slic3r only), one has the printer (a simulated Marlin); the client, on a host of its own,
// talks to the driving node through a proxy that keeps every byte it passes.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { netnsSkip, lines } from '../helpers/netns.js'
import { startSimPty, type SimPty } from '../helpers/pty.js'
import { printedCommands } from '../helpers/sliced.js'
import { createNodeLan, root, until, type LanNode, type NodeLan } from '../helpers/lan.js'

const skip = netnsSkip('multi-host tests run in network namespaces')

let nl: NodeLan
let sim: SimPty
let alpha: LanNode, beta: LanNode, gamma: LanNode, delta: LanNode
let work: string
let proxy: { url: string, dir: string }

before(async () => {
  if (skip()) return
  sim = await startSimPty()
  nl = await createNodeLan(4, 1)
  const node = (i: number, name: string, offer: string, extra: Partial<Parameters<NodeLan['startNode']>[1]> = {}) =>
    nl.startNode(nl.hosts[i], { name, slots: 1, testServices: false, args: ['--offer', offer], ...extra })
  ;[alpha, beta, gamma, delta] = await Promise.all([
    node(0, 'alpha', 'openscad'),
    node(1, 'beta', 'slic3r'),
    node(2, 'gamma', 'printrun', { printers: [`mk3=${sim.path}`] }),
    node(3, 'delta', 'slic3r'),
  ])
  // the driving node hears the others before the client comes
  await until(async () => {
    const ids = ((await nl.http(`${alpha.url}/api/v1/peers`)).body as any[]).map((p) => p.record.id)
    return [beta, gamma, delta].every((n) => ids.includes(n.id))
  }, 15_000, 'alpha to see its peers')
  await until(async () => (await nl.http(`${gamma.url}/api/v1/meta`)).body.printers?.[0]?.state === 'idle', 15_000, 'the printer to connect')
  work = join(nl.dir, 'work')
  mkdirSync(work)
  for (const f of ['cube.scad', 'slic3r.ini', 'ball.scad']) copyFileSync(join(root, 'test', 'fixtures', f), join(work, f))
  const dir = join(nl.dir, 'proxy')
  mkdirSync(dir)
  const child = nl.lan.spawn(nl.client, [process.execPath, join(root, 'test/fixtures/counting-proxy.mjs'), '0', alpha.host.address, '4468', dir])
  const { port } = await lines<{ event: string, port: number }>(child).wait((l) => l.event === 'listening', 10_000, 'the proxy')
  proxy = { url: `127.0.0.1:${port}`, dir }
})
after(async () => {
  if (skip()) return
  await nl.close()
  await sim.stop()
})

/** the client in its namespace, through the proxy to alpha, no mDNS of its own */
const client = (args: string[], timeoutMs = 120_000) => nl.rrcloud(['pipe', `--s=${proxy.url}`, ...args], { cwd: work, env: { RRCLOUD_MDNS: 'off' }, timeoutMs })
const pipeline = async (id: string) => (await nl.http(`${alpha.url}/api/v1/pipelines/${id}`)).body
const nodeNamed = (id: string) => [alpha, beta, gamma, delta].find((n) => n.id === id)?.name
const traffic = () => ['up.bin', 'down.bin'].map((f) => existsSync(join(proxy.dir, f)) ? readFileSync(join(proxy.dir, f)) : Buffer.alloc(0))

test('each stage runs on a node that offers it; no byte of the STL or the G-code passes through the client', { skip: skip() }, async () => {
  const started = Date.now()
  const r = await client(['openscad', 'cube.scad', '--', 'slic3r', '--load=slic3r.ini', '--', 'printrun', '--printer', 'mk3'])
  assert.equal(r.code, 0, r.stderr)
  const list = (await nl.http(`${alpha.url}/api/v1/pipelines`)).body as any[]
  const p = list.at(-1)
  assert.equal(p.status, 'complete')
  const where = p.stages.map((s: any) => nodeNamed(s.nodeId))
  assert.equal(where[0], 'alpha')
  assert.ok(['beta', 'delta'].includes(where[1]), `slicing on ${where[1]}`)
  assert.equal(where[2], 'gamma')
  // the printer got what the slicing node made
  const slicer = [beta, delta].find((n) => n.name === where[1])!
  const gcode = (await nl.http(`${slicer.url}/api/v1/tasks/${p.stages[1].task}/output`)).text
  const expected = gcode.split('\n').map((l) => l.replace(/;.*/, '').trim()).filter(Boolean)
  assert.deepEqual(printedCommands(sim.log()), expected)

  const [up, down] = traffic()
  const stl = (await nl.http(`${alpha.url}/api/v1/tasks/${p.stages[0].task}/output`)).text
  assert.ok(up.includes(readFileSync(join(work, 'cube.scad'))), 'the proxy saw the model go up')
  for (const [what, bytes] of [['up', up], ['down', down]] as const) {
    assert.ok(!bytes.includes('facet normal'), `no STL ${what}`)
    assert.ok(!bytes.includes(stl.split('\n').slice(1, 4).join('\n')), `no STL ${what}`)
    assert.ok(!bytes.includes(expected.slice(20, 25).join('\n')), `no G-code ${what}`)
    assert.ok(!/\nG1 [XYZEF]/.test(bytes.toString('latin1')), `no G-code ${what}`)
  }
  const intermediate = p.stages[0].outSize + p.stages[1].outSize
  process.stderr.write(`through the client: ${up.length} bytes up, ${down.length} down (requests and replies); intermediate outputs: ${intermediate} bytes, none of them; ${Date.now() - started} ms\n`)
})

test('a stage whose node is killed mid-stage runs once more on the other node that offers it', { skip: skip() }, async () => {
  const r = await client(['--async', '--no-cache', 'openscad', 'ball.scad', '--', 'slic3r', '--load=slic3r.ini'])
  assert.equal(r.code, 0, r.stderr)
  const id = /^id: (\S+)$/m.exec(r.stdout)![1]
  const first = await until(async () => {
    const s = (await pipeline(id)).stages[1]
    const n = [beta, delta].find((x) => x.id === s.nodeId)
    if (!n || !s.task) return undefined
    return (await nl.http(`${n.url}/api/v1/tasks/${s.task}`)).body.status === 'busy' ? n : undefined
  }, 60_000, 'slicing to run', 200)
  await first.stop('SIGKILL')
  const p = await until(async () => {
    const x = await pipeline(id)
    return x.status !== 'running' ? x : undefined
  }, 90_000, 'the pipeline to end', 500)
  assert.equal(p.status, 'complete', p.error)
  const other = first === beta ? delta : beta
  assert.equal(p.stages[1].nodeId, other.id, 'run again on the other slicing node')
  assert.equal(p.stages[1].attempts, 2)
  assert.equal(p.stages[0].nodeId, alpha.id, 'the render ran once, on alpha')
  // the other node pulled the STL from alpha, which made it
  assert.ok(other.out.all.some((l) => l.includes(`blob ${p.stages[0].outSha256.slice(0, 12)}`) && l.includes(`pulled from ${alpha.host.address}`)), other.out.all.join('\n'))
  const out = join(work, 'ball.gcode')
  const f = await nl.rrcloud(['fetch', `--s=${proxy.url}`, id, '-o', out], { cwd: work, env: { RRCLOUD_MDNS: 'off' } })
  assert.equal(f.code, 0, f.stderr)
  assert.match(readFileSync(out, 'utf8'), /^G1 /m)
})
