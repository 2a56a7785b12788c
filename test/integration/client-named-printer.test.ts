// Printing through a node named with --s or in rrcloudrc (printrun.servers), mDNS off: the client
// asks the named node for its printers, so `--printer NAME` and the seed's `printrun.cloud PORT FILE`
// find it, and a named node that does not answer is said to be so, quickly. A simulated Marlin on a
// socat pty (test/helpers/pty.ts) is the printer; what it received is checked.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server as NetServer, type Socket } from 'node:net'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { getJson, testNode, until, waitTask, type TestNode } from '../helpers/node.js'
import { startSimPty, type SimPty } from '../helpers/pty.js'
import { printedCommands } from '../helpers/sliced.js'
import { ensureBuilt, run, workdir, type Workdir } from '../fixtures/client/harness.js'

let sim: SimPty
let node: TestNode
let w: Workdir
/** accepts connections and never answers */
let mute: NetServer
const sockets: Socket[] = []
let muteAt: string
let deadAt: string
const at = (n: TestNode) => `127.0.0.1:${n.port}`
// no node on this machine's default port takes part: only the named one
const env = { RRCLOUD_LOCAL: 'off' }

/** A G-code file whose commands are its own (M117 messages carry the tag), and those commands. */
function part (name: string): string[] {
  const commands = ['G28', 'G90', `M117 ${name}`, 'G1 X10 Y10 F3000', 'G1 X20 Y10', `M117 ${name} done`]
  writeFileSync(join(w.cwd, `${name}.gcode`), `; ${name}\n${commands.join('\n')}\n`)
  return commands
}

/** What the firmware received of the file tagged `name`, in order. */
function received (name: string): string[] {
  const log = printedCommands(sim.log())
  const start = log.indexOf(`M117 ${name}`)
  return start < 2 ? [] : log.slice(start - 2, start + 4)
}

before(async () => {
  ensureBuilt()
  sim = await startSimPty()
  node = await testNode({ name: 'pi-mk3', printers: [{ name: 'mk3', path: sim.path }], printerOptions: { settleMs: 50, temperatureIntervalMs: 200 } })
  await until(async () => (await getJson(`${node.url}/api/v1/meta`)).printers[0]?.state === 'idle', 10_000, 'the printer to connect')
  w = workdir()
  mute = createServer((s) => { sockets.push(s) }).listen(0, '127.0.0.1')
  await once(mute, 'listening')
  muteAt = `127.0.0.1:${(mute.address() as { port: number }).port}`
  const closed = createServer().listen(0, '127.0.0.1')
  await once(closed, 'listening')
  deadAt = `127.0.0.1:${(closed.address() as { port: number }).port}`
  closed.close()
})
after(async () => {
  for (const s of sockets) s.destroy()
  mute.close()
  await node.stop()
  await sim.stop()
  w.remove()
})

const idOf = (stdout: string) => /^id: (\S+)$/m.exec(stdout)?.[1]

test('rrcloud --s=HOST printrun --printer mk3: the named node is asked for its printers and prints', async () => {
  const commands = part('by-name')
  const r = await run(w, 'run.js', [`--s=${at(node)}`, 'printrun', '--printer', 'mk3', 'by-name.gcode'], env)
  assert.equal(r.code, 0, r.stderr)
  const id = idOf(r.stdout)
  assert.ok(id, r.stdout)
  const done = await waitTask(node.url, id, 30_000)
  assert.equal(done.status, 'complete', done.error)
  assert.equal(done.printer, 'mk3')
  assert.deepEqual(received('by-name'), commands)
})

test('printrun.cloud --s=HOST PORT FILE (the seed form): the printer by its port path, waits for the print', async () => {
  const commands = part('by-port')
  const r = await run(w, 'printrun.cloud', [`--s=${at(node)}`, sim.path, 'by-port.gcode'], env)
  assert.equal(r.code, 0, r.stderr)
  assert.deepEqual(received('by-port'), commands)
})

test('printrun.servers in rrcloudrc: rrcloud printrun --printer mk3 goes to that node', async () => {
  const commands = part('from-rc')
  const rc = join(w.cwd, 'rrcloudrc')
  writeFileSync(rc, `# the seed's format\nprintrun.servers = ${at(node)}\n`)
  try {
    const r = await run(w, 'run.js', ['printrun', '--printer', 'mk3', '--wait', 'from-rc.gcode'], env)
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(received('from-rc'), commands)
    // the printer no node has: the named node's printers are listed
    part('nowhere')
    const none = await run(w, 'run.js', ['printrun', '--printer', 'ender', 'nowhere.gcode'], env)
    assert.equal(none.code, 2)
    // the printer has printed: its bed holds the print (the farm's state)
    assert.match(none.stderr, new RegExp(`no printer ender on the LAN; printers: mk3 \\(${sim.path.replace(/[.]/g, '\\.')}, finished\\) on pi-mk3`))
    assert.deepEqual(received('nowhere'), [])
    // a node named first that is down does not hide the printer of the next
    const next = part('after-dead')
    writeFileSync(rc, `printrun.servers = ${deadAt}, ${at(node)}\n`)
    const d = await run(w, 'printrun.cloud', ['--printer=mk3', 'after-dead.gcode'], env)
    assert.equal(d.code, 0, d.stderr)
    assert.deepEqual(received('after-dead'), next)
    // ... but when the printer is nowhere, it may be there: that is said, exit 3
    const maybe = await run(w, 'run.js', ['printrun', '--printer', 'ender', 'nowhere.gcode'], env)
    assert.equal(maybe.code, 3, maybe.stderr)
    assert.match(maybe.stderr, new RegExp(`no printer ender on the LAN; printers: mk3 .* on pi-mk3; not asked: ${deadAt.replace(/[.]/g, '\\.')} \\(.*ECONNREFUSED`))
  } finally {
    writeFileSync(rc, '')
  }
})

test('a named node that does not answer: said within seconds, with its address and where it was named', async () => {
  part('lost')
  for (const [where, why] of [[muteAt, /no answer within \d+ ms/], [deadAt, /connection refused/]] as const) {
    const started = Date.now()
    const r = await run(w, 'run.js', [`--s=${where}`, 'printrun', '--printer', 'mk3', 'lost.gcode'], env)
    assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`)
    assert.equal(r.code, 3, r.stderr)
    assert.match(r.stderr, new RegExp(`cannot reach a node at http://${where.replace(/[.]/g, '\\.')} \\(`))
    assert.match(r.stderr, why)
    assert.match(r.stderr, /node chosen by --s/)
    // by port path, and with no printer named (the LAN's only printer is looked for)
    for (const args of [['/dev/ttyUSB0', 'lost.gcode'], ['lost.gcode']]) {
      const cloud = await run(w, 'printrun.cloud', [`--s=${where}`, ...args], env)
      assert.equal(cloud.code, 3, cloud.stderr)
      assert.match(cloud.stderr, new RegExp(`cannot reach a node at http://${where.replace(/[.]/g, '\\.')} \\(`))
      assert.match(cloud.stderr, why)
    }
  }
  assert.deepEqual(received('lost'), [])
})
