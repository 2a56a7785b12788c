import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { once } from 'node:events'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { testNode, type TestNode } from '../helpers/node.js'
import { deadPort, ensureBuilt, run, workdir, type Workdir } from '../fixtures/client/harness.js'

let node: TestNode
let locked: TestNode
let w: Workdir
let dead: number

before(async () => {
  ensureBuilt()
  node = await testNode()
  locked = await testNode({ token: 's3cret' })
  w = workdir('cube.scad')
  dead = await deadPort()
})
after(async () => {
  await node.stop()
  w.remove()
  await locked.stop()
})

const at = (n: TestNode) => `127.0.0.1:${n.port}`
const stl = (file: string) => readFileSync(join(w.cwd, file), 'utf8').startsWith('solid ')

test('node unreachable: the address tried, how to start one, exit 3', async () => {
  for (const r of [
    await run(w, 'openscad.cloud', [`--s=127.0.0.1:${dead}`, 'cube.scad']),
    await run(w, 'run.js', [`--s=127.0.0.1:${dead}`, 'info']),
  ]) {
    assert.equal(r.code, 3)
    assert.match(r.stderr, new RegExp(`cannot reach a node at http://127\\.0\\.0\\.1:${dead} \\(connection refused\\): start one there with \`rrcloud node\``))
    assert.match(r.stderr, /--local/)
  }
  const cloud = await run(w, 'openscad.cloud', [`--s=127.0.0.1:${dead}`, 'cube.scad'])
  assert.match(cloud.stderr, /\(node chosen by --s\)/, 'says where the address came from')
})

test('unknown service: which services the node has, exit 2', async () => {
  writeFileSync(join(w.cwd, 'x.txt'), 'x')
  const r = await run(w, 'run.js', [`--s=${at(node)}`, 'nosuch', 'x.txt'])
  assert.equal(r.code, 2)
  assert.match(r.stderr, /unknown service nosuch: http:\/\/127\.0\.0\.1:\d+ offers echo, openjscad, openscad, povray, slic3r/)
  const l = await run(w, 'run.js', ['--local', 'nosuch', 'x.txt'])
  assert.equal(l.code, 2)
  assert.match(l.stderr, /unknown service nosuch: this machine knows echo, openjscad, openscad, povray, (printrun, )?slic3r/)
})

test('input file missing, output not writable: said before anything is sent, exit 2', async () => {
  const before = node.runner.list().length
  const missing = await run(w, 'openscad.cloud', [`--s=${at(node)}`, 'nope.scad'])
  assert.equal(missing.code, 2)
  assert.match(missing.stderr, /input file nope\.scad not found \(in \S+\)/)
  const noDir = await run(w, 'openscad.cloud', [`--s=${at(node)}`, 'cube.scad', '-o', 'no/such/dir/x.stl'])
  assert.equal(noDir.code, 2)
  assert.match(noDir.stderr, /cannot write \S+x\.stl: folder \S+dir does not exist/)
  mkdirSync(join(w.cwd, 'adir'))
  const isDir = await run(w, 'openscad.cloud', [`--s=${at(node)}`, 'cube.scad', '-oadir'])
  assert.equal(isDir.code, 2)
  assert.match(isDir.stderr, /output \S+adir is a folder/)
  assert.equal(node.runner.list().length, before, 'no task was sent')
})

test('token needed: says how to give it; --token, RRCLOUD_TOKEN and rrcloudrc all work', async () => {
  const r = await run(w, 'openscad.cloud', [`--s=${at(locked)}`, 'cube.scad', '-otok.stl'])
  assert.equal(r.code, 3)
  assert.match(r.stderr, /needs a token: pass --token=TOKEN, set RRCLOUD_TOKEN or add "token = \.\.\." to rrcloudrc/)
  assert.equal((await run(w, 'openscad.cloud', [`--s=${at(locked)}`, '--token=wrong', 'cube.scad'])).code, 3)
  assert.equal((await run(w, 'openscad.cloud', [`--s=${at(locked)}`, '--token=s3cret', 'cube.scad', '-otok1.stl'])).code, 0)
  assert.equal((await run(w, 'openscad.cloud', [`--s=${at(locked)}`, 'cube.scad', '-otok2.stl'], { RRCLOUD_TOKEN: 's3cret' })).code, 0)
  writeFileSync(join(w.home, '.rrcloudrc'), `token = s3cret\nservers = ${at(locked)}\n`)
  try {
    const c = await run(w, 'openscad.cloud', ['cube.scad', '-otok3.stl'])
    assert.equal(c.code, 0, c.stderr)
    const id = /^id: (\S+)/.exec((await run(w, 'run.js', ['openscad', 'cube.scad'])).stdout)![1]
    const cancel = await run(w, 'run.js', ['cancel', id])
    assert.ok(cancel.code === 0 || /already complete/.test(cancel.stderr), cancel.stderr)
  } finally {
    writeFileSync(join(w.home, '.rrcloudrc'), '')
  }
  assert.ok(stl('tok1.stl') && stl('tok2.stl') && stl('tok3.stl'))
})

test('rrcloudrc: ./rrcloudrc, then ~/.rrcloudrc with SERVICE.servers; a bad line is named', async () => {
  const rc = join(w.cwd, 'rrcloudrc')
  try {
    writeFileSync(join(w.home, '.rrcloudrc'), `openscad.servers = 127.0.0.1:${dead}   # wrong, but ./rrcloudrc wins\n`)
    writeFileSync(rc, `# the seed's format\nopenscad.servers = ${at(node)}  # for openscad.cloud only\n`)
    const r = await run(w, 'openscad.cloud', ['cube.scad', '-orc1.stl'])
    assert.equal(r.code, 0, r.stderr)
    writeFileSync(rc, '')
    writeFileSync(join(w.home, '.rrcloudrc'), `servers = 127.0.0.1:${dead}\nopenscad.servers = ${at(node)}\n`)
    assert.equal((await run(w, 'openscad.cloud', ['cube.scad', '-orc2.stl'])).code, 0)
    assert.ok(stl('rc1.stl') && stl('rc2.stl'))
    writeFileSync(rc, 'servers = a.local\nservers: b.local\n')
    const bad = await run(w, 'openscad.cloud', ['cube.scad'])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, new RegExp(`${rc}:2: expected "servers = host\\[:port\\],\\.\\.\\."`))
    const badCmd = await run(w, 'run.js', ['info'])
    assert.equal(badCmd.code, 2)
    assert.match(badCmd.stderr, /rrcloudrc:2: expected/)
  } finally {
    writeFileSync(rc, '')
    writeFileSync(join(w.home, '.rrcloudrc'), '')
  }
})

test('failover: an unreachable node and a refusing one (503) are skipped for the next candidate', async () => {
  const full = createServer((_req, res) => {
    res.writeHead(503, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ error: 'no free slot', status: 503 }))
  }).listen(0, '127.0.0.1')
  await once(full, 'listening')
  const fullAt = `127.0.0.1:${(full.address() as { port: number }).port}`
  const rc = join(w.cwd, 'rrcloudrc')
  try {
    writeFileSync(rc, `servers = 127.0.0.1:${dead}, ${fullAt}, ${at(node)}\n`)
    const r = await run(w, 'openscad.cloud', ['cube.scad', '-ofo.stl'])
    assert.equal(r.code, 0, r.stderr)
    assert.ok(stl('fo.stl'))
    writeFileSync(rc, `servers = 127.0.0.1:${dead}, ${fullAt}\n`)
    const none = await run(w, 'openscad.cloud', ['cube.scad', '-ofo2.stl'])
    assert.equal(none.code, 3)
    assert.match(none.stderr, /no node took the openscad task:\n .*cannot reach.*\n .*failed \(503\): no free slot \(node chosen by rrcloudrc \([^)]*\/rrcloudrc[,)]/)
    assert.equal(existsSync(join(w.cwd, 'fo2.stl')), false)
  } finally {
    writeFileSync(rc, '')
    full.close()
  }
})
