// Task content is hostile: each of these tried to reach beyond its own task through a tool, and
// each worked before tools ran sandboxed. The sandbox (bwrap) is what CI and this machine have.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { once } from 'node:events'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getJson, post, testNode, waitTask, type TestNode } from '../helpers/node.js'

let node: TestNode
/** a folder of the host's that no task may see, readable by anyone on the host */
let host: string
const SECRET = 'host-secret-5f3a9c'

before(async () => {
  // the node's environment must not reach the tools either
  process.env.RRCLOUD_TEST_SECRET = SECRET
  host = mkdtempSync(join(tmpdir(), 'rrcloud-host-'))
  chmodSync(host, 0o755)
  writeFileSync(join(host, 'secret.txt'), SECRET + '\n')
  // a solid of its own size: 777 appears in any output that took it in
  writeFileSync(join(host, 'secret.stl'), solid(777))
  writeFileSync(join(host, 'height.dat'), '777 777\n777 777\n')
  node = await testNode()
  assert.equal(node.services.find((s) => s.name === 'openjscad')?.available, true, 'openjscad is offered in the sandbox')
})
after(async () => {
  await node.stop()
  rmSync(host, { recursive: true, force: true })
  delete process.env.RRCLOUD_TEST_SECRET
})

function solid (size: number): string {
  const f = (a: number[], b: number[], c: number[]) => `facet normal 0 0 0\nouter loop\nvertex ${a.join(' ')}\nvertex ${b.join(' ')}\nvertex ${c.join(' ')}\nendloop\nendfacet\n`
  return `solid s\n${f([0, 0, 0], [size, 0, 0], [0, size, 0])}${f([0, 0, 0], [0, size, 0], [0, 0, size])}${f([0, 0, 0], [0, 0, size], [size, 0, 0])}${f([size, 0, 0], [0, 0, size], [0, size, 0])}endsolid s\n`
}

const run = async (service: string, files: Array<[string, string, string]>, fields: Record<string, string> = {}) => {
  const r = await post(node.url, { service, ...fields }, files)
  assert.equal(r.status, 201, JSON.stringify(r.body))
  const t = await waitTask(node.url, r.body.id, 60000)
  const log = await (await fetch(`${node.url}/api/v1/tasks/${t.id}/log`)).text()
  const out = t.status === 'complete' ? Buffer.from(await (await fetch(`${node.url}/api/v1/tasks/${t.id}/output`)).arrayBuffer()).toString('latin1') : ''
  return { t, log, out }
}

test('openjscad: a script that runs programs and writes files reaches nothing of the host', async () => {
  const marker = join(host, 'pwned-jscad')
  const script = `
const fs = require('fs')
const { execSync } = require('child_process')
const tried = []
const attempt = (what, f) => { try { tried.push(what + ': ' + String(f()).trim()) } catch (e) { tried.push(what + ' refused: ' + e.code) } }
attempt('id', () => execSync('id'))
attempt('write marker', () => { fs.writeFileSync(${JSON.stringify(marker)}, 'x'); return 'written' })
attempt('touch marker', () => execSync('touch ${marker}'))
attempt('read secret', () => fs.readFileSync(${JSON.stringify(join(host, 'secret.txt'))}, 'utf8'))
attempt('read database', () => fs.readFileSync(${JSON.stringify(join(node.dataDir, 'tasks.db'))}).length)
attempt('env', () => process.env.RRCLOUD_TEST_SECRET || 'none')
console.log(tried.join('\\n'))
const { cube } = require('@jscad/modeling').primitives
module.exports = { main: () => cube({ size: 3 }) }
`
  const { t, log } = await run('openjscad', [['fileIn0', script, 'evil.jscad']])
  assert.equal(t.status, 'complete', log)
  assert.match(log, /^id: uid=65534/m, 'programs run as nobody')
  assert.match(log, /write marker refused: (ENOENT|EROFS|EACCES)/)
  assert.match(log, /read secret refused: ENOENT/)
  assert.match(log, /read database refused: ENOENT/)
  assert.match(log, /^env: none$/m)
  assert.ok(!log.includes(SECRET))
  assert.ok(!existsSync(marker), 'nothing was written on the host')
})

test('openjscad: no network, not even the host\'s loopback', async () => {
  let connections = 0
  const server = createServer((s) => { connections++; s.destroy() })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port
  try {
    // a script's main() is synchronous: the attempt runs in a Node.js of its own, waited for
    const probe = `const s = require('net').connect(${port}, '127.0.0.1'); s.on('connect', () => { console.log('connected'); s.destroy() }); s.on('error', (e) => console.log('connect refused: ' + e.code))`
    const script = `
const r = require('child_process').spawnSync(process.execPath, ['-e', ${JSON.stringify(probe)}], { encoding: 'utf8' })
console.log(r.stdout)
const { cube } = require('@jscad/modeling').primitives
module.exports = { main: () => cube({ size: 3 }) }
`
    const { log } = await run('openjscad', [['fileIn0', script, 'net.jscad']])
    assert.match(log, /connect refused: ECONNREFUSED/)
    assert.equal(connections, 0)
  } finally { server.close() }
})

test('povray: #fopen cannot overwrite the database nor read another task\'s input', async () => {
  const db = join(node.dataDir, 'tasks.db')
  const size = statSync(db).size
  const other = await run('echo', [['fileIn0', SECRET, 'private.txt']])
  assert.equal(other.t.status, 'complete')
  const otherIn = join(node.dataDir, other.t.in)
  const scene = `
#fopen W "${db}" write
#write (W, "gone")
#fclose W
#fopen R "${otherIn}" read
#read (R, S)
#debug concat("read: ", S, "\\n")
camera { location <0,2,-3> look_at <0,1,2> }
sphere { <0,1,2>, 1 pigment { color rgb <1,1,0> } }
light_source { <2,4,-3> color rgb <1,1,1> }
`
  const { log } = await run('povray', [['fileIn0', scene, 'evil.pov']])
  assert.ok(!log.includes(SECRET), 'the other task\'s input was not read')
  assert.ok(statSync(db).size >= size && !readFileSync(db, 'latin1').startsWith('gone'), 'the database is whole')
  // the node still has every record
  assert.ok((await getJson(`${node.url}/api/v1/tasks`)).some((x: { id: string }) => x.id === other.t.id))
  // and a relative path out of the task's folder leads nowhere either
  const rel = scene.replace(otherIn, `../../in/${other.t.in.split('/').pop()}`).replace(db, '../../../tasks.db')
  const again = await run('povray', [['fileIn0', rel, 'evil2.pov']])
  assert.ok(!again.log.includes(SECRET))
  assert.ok(!readFileSync(db, 'latin1').startsWith('gone'))
})

test('openscad: import() and surface() of host files and of another task\'s input take in nothing', async () => {
  const other = await run('echo', [['fileIn0', solid(777), 'part.stl']])
  assert.equal(other.t.status, 'complete')
  const otherIn = other.t.in.split('/').pop()
  for (const model of [
    `cube(5); import("${join(host, 'secret.stl')}");`,
    `cube(5); surface(file = "${join(host, 'height.dat')}");`,
    `cube(5); import("${join(node.dataDir, other.t.in)}");`,
    `cube(5); import("../../in/${otherIn}");`,
    `cube(5); import("${otherIn}");`,
  ]) {
    const { t, out, log } = await run('openscad', [['fileIn0', model, 'evil.scad']])
    assert.ok(!out.includes('777') && !log.includes('777'), `${model}: ${t.status}\n${log}`)
  }
})

test('slic3r: a config that names a program is refused, and the program never runs', async () => {
  const marker = join(host, 'pwned-slic3r')
  const script = join(host, 'post.sh')
  writeFileSync(script, `#!/bin/sh\ntouch ${marker}\n`)
  chmodSync(script, 0o755)
  const ini = readFileSync(new URL('../fixtures/slic3r.ini', import.meta.url), 'utf8') + `post_process = ${script}\n`
  const r = await post(node.url, { service: 'slic3r', prearg0: '--load=' }, [['fileIn0', ini, 'p.ini'], ['fileIn1', solid(10), 'c.stl']])
  assert.equal(r.status, 400)
  assert.match(r.body.error, /fileIn0 sets post_process = .*post\.sh: a node does not run programs named in configs/)
  // an empty post_process is fine
  const ok = await run('slic3r', [['fileIn0', ini.replace(/post_process = .*/, 'post_process = '), 'p.ini'], ['fileIn1', solid(10), 'c.stl']], { prearg0: '--load=' })
  assert.equal(ok.t.status, 'complete', ok.log)
  assert.match(ok.out, /^G1 /m)
  assert.ok(!existsSync(marker))
})

test('limits: a tool that writes past the file size limit, or takes too much memory, fails', async () => {
  const small = await testNode({ limits: { fileMiB: 1, memoryMiB: 200 } })
  try {
    const big = await post(small.url, { service: 'echo' }, [['fileIn0', Buffer.alloc(2 << 20, 97), 'big.txt']])
    const t = await waitTask(small.url, big.body.id)
    assert.equal(t.status, 'failed')
    assert.equal(t.error, 'killed by SIGXFSZ')
    const hog = `const a = []; for (let i = 0; i < 40; i++) a.push(Buffer.alloc(20 << 20, 1))
const { cube } = require('@jscad/modeling').primitives
module.exports = { main: () => cube({ size: a.length }) }`
    const h = await post(small.url, { service: 'openjscad' }, [['fileIn0', hog, 'hog.jscad']])
    const ht = await waitTask(small.url, h.body.id, 60000)
    assert.equal(ht.status, 'failed')
    const ok = await post(small.url, { service: 'echo' }, [['fileIn0', 'fits', 'a.txt']])
    assert.equal((await waitTask(small.url, ok.body.id)).status, 'complete')
  } finally { await small.stop() }
})

test('meta says how tools run; auto without a working bwrap offers no service that runs task content', async () => {
  const meta = await getJson(`${node.url}/api/v1/meta`)
  assert.equal(meta.sandbox, 'bwrap')
  process.env.RRCLOUD_BWRAP = '/nonexistent/bwrap'
  try {
    const auto = await testNode()
    try {
      const m = await getJson(`${auto.url}/api/v1/meta`)
      assert.equal(m.sandbox, 'none')
      assert.match(m.unavailable.openjscad, /runs task content as a program, and there is no sandbox here/)
      assert.ok(!m.services.split(',').includes('openjscad'))
      assert.ok(m.services.split(',').includes('openscad'))
    } finally { await auto.stop() }
    await assert.rejects(testNode({ sandbox: 'bwrap' }), /--sandbox bwrap: bubblewrap \(\/nonexistent\/bwrap\) is not installed/)
    const none = await testNode({ sandbox: 'none' })
    try {
      const m = await getJson(`${none.url}/api/v1/meta`)
      assert.equal(m.sandbox, 'none')
      assert.match(m.sandboxNote, /asked for with --sandbox none/)
      assert.ok(m.services.split(',').includes('openjscad'))
      const t = await post(none.url, { service: 'openscad' }, [['fileIn0', 'cube(2);', 'c.scad']])
      assert.equal((await waitTask(none.url, t.body.id)).status, 'complete')
    } finally { await none.stop() }
  } finally { delete process.env.RRCLOUD_BWRAP }
})
