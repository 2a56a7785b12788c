// The farm commands against nodes on loopback (no mDNS): rrcloud print, printers, clear, queue.
// How copies spread over the printers of several nodes is in test/lan/lan-farm.test.ts.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { getJson, testNode, until, type TestNode } from '../helpers/node.js'
import { startSimPty, type SimPty } from '../helpers/pty.js'
import { ensureBuilt, run, workdir, type Workdir } from '../fixtures/client/harness.js'

const FAST = { settleMs: 50, temperatureIntervalMs: 200, safeTimeoutMs: 1000, reconnectMs: 100 }
let sims: SimPty[]
let here: TestNode
let there: TestNode
let w: Workdir
let env: NodeJS.ProcessEnv

before(async () => {
  ensureBuilt()
  sims = await Promise.all([startSimPty([]), startSimPty([])])
  ;[here, there] = await Promise.all([
    testNode({ name: 'here', printers: [{ name: 'mk3a', path: sims[0].path, groups: ['mk3'] }], printerOptions: FAST, farm: { everyMs: 200 } }),
    testNode({ name: 'there', printers: [{ name: 'ender', path: sims[1].path, groups: ['pla'] }], printerOptions: FAST, farm: { everyMs: 200 } }),
  ])
  w = workdir()
  writeFileSync(join(w.cwd, 'part.gcode'), 'G28\nG1 X10 Y10\nM117 part done\n')
  env = { RRCLOUD_LOCAL: `127.0.0.1:${here.port}` }
  for (const n of [here, there]) await until(async () => (await getJson(`${n.url}/api/v1/printers`))[0].connection === 'idle', 10000, 'connected')
})
after(async () => {
  await Promise.all([here.stop(), there.stop()])
  await Promise.all(sims.map((s) => s.stop()))
  w.remove()
})

const rr = (args: string[]) => run(w, 'run.js', [...args, `--s=127.0.0.1:${there.port}`], env)
const prints = (sim: SimPty) => sim.log().filter((l) => l === 'M117 part done').length

test('rrcloud print queues on the node that has the group; printers, clear and queue follow it', async () => {
  const list = await rr(['printers', '--json'])
  assert.equal(list.code, 0, list.stderr)
  assert.deepEqual(JSON.parse(list.stdout).map((p: any) => [p.name, p.node, p.state, p.groups]), [['mk3a', 'here', 'idle', ['mk3']], ['ender', 'there', 'idle', ['pla']]])

  const p = await rr(['print', '--group', 'pla', '--copies', '2', 'part.gcode'])
  assert.equal(p.code, 0, p.stderr)
  assert.match(p.stdout, /^job: j\d+-\d{6}$/m)
  assert.match(p.stdout, /^node: there$/m, 'the job goes to the node that has printers of the group')
  const id = /^job: (\S+)$/m.exec(p.stdout)![1]
  await until(() => prints(sims[1]) === 1, 10000, 'the first copy')
  await until(async () => (await getJson(`${there.url}/api/v1/printers/ender`)).state === 'finished', 5000, 'finished')

  const table = await rr(['printers'])
  assert.match(table.stdout, /^PRINTER\s+NODE\s+STATE\s+JOB/m)
  assert.match(table.stdout, /^ender\s+there\s+finished\s+part\.gcode \(j\d+-\d{6} #1\)/m)
  const q = await rr(['queue', '--json'])
  const jobs = JSON.parse(q.stdout)
  assert.deepEqual(jobs.map((j: any) => [j.id, j.node, j.counts.complete, j.counts.queued]), [[id, 'there', 1, 1]])
  const qt = await rr(['queue', '--group', 'pla'])
  assert.match(qt.stdout, new RegExp(`^${id}\\s+there\\s+1\\s+part\\.gcode\\s+group pla\\s+1/2 done, 1 queued`, 'm'))
  assert.match((await rr(['queue', '--group', 'mk3'])).stdout, /the queue is empty/)

  const c = await rr(['clear', 'ender'])
  assert.equal(c.code, 0, c.stderr)
  assert.match(c.stdout, /ender on there: idle/)
  await until(() => prints(sims[1]) === 2, 10000, 'the second copy after the clear')
  assert.equal(prints(sims[0]), 0, 'nothing on the printer of the other group')
})

test('rrcloud queue pause, move, rm and resume; a job for a group nobody has is refused', async () => {
  const paused = await rr(['queue', 'pause', '--group', 'mk3'])
  assert.equal(paused.code, 0, paused.stderr)
  assert.match(paused.stdout, /here: paused: group mk3/)
  const ids: string[] = []
  for (let i = 0; i < 3; i++) {
    const r = await rr(['print', '--group', 'mk3', 'part.gcode'])
    assert.match(r.stdout, /^node: here$/m)
    ids.push(/^job: (\S+)$/m.exec(r.stdout)![1])
  }
  const moved = await rr(['queue', 'move', ids[2], '--to', '1', '--json'])
  assert.equal(moved.code, 0, moved.stderr)
  assert.deepEqual(JSON.parse(moved.stdout).map((j: any) => j.id), [ids[2], ids[0], ids[1]])
  const rm = await rr(['queue', 'rm', ids[0]])
  assert.match(rm.stdout, new RegExp(`removed ${ids[0]}`))
  assert.equal((await rr(['queue', 'rm', ids[0]])).code, 1)
  assert.equal(prints(sims[0]), 0, 'paused: nothing printed')
  const resumed = await rr(['queue', 'resume'])
  assert.match(resumed.stdout, /here: not paused/)
  await until(() => prints(sims[0]) === 1, 10000, 'the first job after resume')
  const q = JSON.parse((await rr(['queue', '--group', 'mk3', '--json'])).stdout)
  assert.deepEqual(q.map((j: any) => [j.id, j.counts.complete]), [[ids[2], 1], [ids[1], 0]], 'the job moved to the front printed first')

  const none = await rr(['print', '--group', 'abs', 'part.gcode'])
  assert.equal(none.code, 2)
  assert.match(none.stderr, /no node has printers of group abs; printers: mk3a \[mk3\] on here; ender \[pla\] on there/)
  assert.equal((await rr(['print', 'part.gcode'])).code, 2)
})
