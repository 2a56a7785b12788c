// A model with its files, through the client and a real node: the files it includes, uses and
// imports travel with it and the node's openscad renders what openscad renders here; a second run
// sends only what changed; the same work again is a cache hit (or not, with --no-cache); a file the
// client could not see fails the task with openscad's message, and --with brings it.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { once } from 'node:events'
import { createServer, connect, type AddressInfo, type Server } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { testNode, type TestNode } from '../helpers/node.js'
import { sameMesh } from '../helpers/stl.js'
import { ensureBuilt, run, workdir, type Workdir } from '../fixtures/client/harness.js'

const projects = fileURLToPath(new URL('../fixtures/projects', import.meta.url))
let node: TestNode
let w: Workdir
let proxy: Server
let s: string
/** bytes the client sent to the node, through the proxy */
let sent = 0

before(async () => {
  ensureBuilt()
  node = await testNode()
  // a TCP proxy that counts what the client sends
  proxy = createServer((c) => {
    const up = connect(node.port, '127.0.0.1')
    c.on('data', (b) => { sent += b.length })
    c.pipe(up).pipe(c)
    const close = () => { c.destroy(); up.destroy() }
    c.on('error', close).on('close', close)
    up.on('error', close).on('close', close)
  })
  proxy.listen(0, '127.0.0.1')
  await once(proxy, 'listening')
  s = `--s=127.0.0.1:${(proxy.address() as AddressInfo).port}`
  w = workdir()
  cpSync(join(projects, 'openscad'), w.cwd, { recursive: true })
})
after(async () => {
  proxy.close()
  await node.stop()
  w.remove()
})

const part = () => join(w.cwd, 'part')
const env = () => ({ OPENSCADPATH: join(w.cwd, 'libs') })
const tasks = () => node.runner.list().sort((a, b) => a.ctime - b.ctime)
const last = () => tasks().at(-1)!

/** openscad here, in the project's own folder, as the user would run it */
function renderHere (out: string) {
  const r = spawnSync('openscad', ['-o', out, 'main.scad'], { cwd: part(), env: { ...process.env, ...env() }, encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  return readFileSync(out)
}

test('a model with includes, a library from OPENSCADPATH and imported data renders on the node as it does here', async () => {
  const here = renderHere(join(w.cwd, 'here.stl'))
  sent = 0
  const r = await run(w, 'openscad.cloud', [s, 'part/main.scad', '-o', 'there.stl'], env())
  assert.equal(r.code, 0, r.stderr)
  assert.ok(sameMesh(join(w.cwd, 'there.stl'), here), 'the same mesh as here')
  const t = last()
  assert.equal(t.status, 'complete')
  const names = (t.files ?? []).map((f: { name?: string }) => f.name).sort()
  assert.deepEqual(names, ['.lib/threads/pitch.scad', '.lib/threads/thread.scad', 'common/units.scad', 'part/config/dims.scad',
    'part/data/outline.dxf', 'part/data/peg.stl', 'part/data/terrain.dat', 'part/lib/profile.dxf', 'part/lib/shapes.scad'])
  assert.ok(sent > 0)
})

test('the same work again completes from the cache, sending no file; --no-cache runs the tool', async () => {
  sent = 0
  const r = await run(w, 'openscad.cloud', [s, 'part/main.scad', '-o', 'again.stl'], env())
  assert.equal(r.code, 0, r.stderr)
  const hit = last()
  assert.ok(hit.cached, `a cache hit: ${JSON.stringify(hit)}`)
  assert.ok(readFileSync(join(w.cwd, 'again.stl')).equals(readFileSync(join(w.cwd, 'there.stl'))))
  const peg = readFileSync(join(part(), 'data/peg.stl')).length
  assert.ok(sent < peg, `no file sent again (${sent} bytes sent, the STL alone is ${peg})`)

  const n = await run(w, 'openscad.cloud', [s, '--no-cache', 'part/main.scad', '-o', 'fresh.stl'], env())
  assert.equal(n.code, 0, n.stderr)
  assert.equal(last().cached, undefined, 'run, not taken from the cache')
  assert.ok(sameMesh(join(w.cwd, 'fresh.stl'), join(w.cwd, 'there.stl')), 'the same mesh, rendered again')
})

test('after a change to one file, only that file is sent', async () => {
  const dims = join(part(), 'config/dims.scad')
  writeFileSync(dims, readFileSync(dims, 'utf8') + '\n// changed\n')
  sent = 0
  const r = await run(w, 'openscad.cloud', [s, 'part/main.scad', '-o', 'changed.stl'], env())
  assert.equal(r.code, 0, r.stderr)
  assert.equal(last().cached, undefined, 'a changed file is new work')
  const peg = readFileSync(join(part(), 'data/peg.stl')).length
  assert.ok(sent < peg, `only the changed file and the requests (${sent} bytes; the STL that did not change is ${peg})`)
})

test('a file the model names in a computed way: a warning, the task fails with openscad\'s message; --with sends it', async () => {
  mkdirSync(join(w.cwd, 'data'))
  writeFileSync(join(w.cwd, 'computed.scad'), 'name = "extra";\ninclude <data/extra.scad>\nimport(str("data/", name, ".stl"));\n')
  cpSync(join(part(), 'data/peg.stl'), join(w.cwd, 'data/extra.stl'))
  writeFileSync(join(w.cwd, 'data/extra.scad'), 'cube(1);\n')
  const r = await run(w, 'openscad.cloud', [s, 'computed.scad', '-o', 'computed.stl'], env())
  assert.match(r.stderr, /could not be followed[\s\S]*computed\.scad:3/)
  assert.equal(r.code, 1, r.stderr)
  assert.match(r.stderr, /Can't open import file/)
  assert.equal(last().status, 'failed')

  const ok = await run(w, 'openscad.cloud', [s, '--with=data/extra.stl', 'computed.scad', '-o', 'computed.stl'], env())
  assert.equal(ok.code, 0, ok.stderr)
  assert.equal(last().status, 'complete')
})

test('a JSCAD design with relative requires, a data file and a folder with an index renders on the node as here', async () => {
  const wj = workdir()
  try {
    cpSync(join(projects, 'openjscad'), wj.cwd, { recursive: true })
    const jscad = fileURLToPath(new URL('../../node_modules/@jscad/cli/cli.js', import.meta.url))
    const here = spawnSync(process.execPath, [jscad, 'main.jscad', '-o', join(wj.cwd, 'here.stl')], { cwd: wj.cwd, env: { ...process.env, NODE_PATH: fileURLToPath(new URL('../../node_modules', import.meta.url)) }, encoding: 'utf8' })
    assert.equal(here.status, 0, here.stderr)
    const r = await run(wj, 'openjscad.cloud', [s, 'main.jscad', '-o', 'there.stl'])
    assert.equal(r.code, 0, r.stderr)
    assert.ok(readFileSync(join(wj.cwd, 'there.stl')).equals(readFileSync(join(wj.cwd, 'here.stl'))), 'the same STL, byte for byte')
    assert.deepEqual((last().files ?? []).map((f: { name?: string }) => f.name).sort(), ['data/knob.stl', 'lib/index.js', 'lib/round.js', 'package.json', 'parts/base.js'])
  } finally {
    wj.remove()
  }
})

test('a POV-Ray scene with its include files and an image map renders on the node', async () => {
  const wp = workdir()
  try {
    cpSync(join(projects, 'povray'), wp.cwd, { recursive: true })
    const r = await run(wp, 'povray.cloud', [s, 'scene.pov', '-o', 'scene.png'])
    assert.equal(r.code, 0, r.stderr)
    const png = readFileSync(join(wp.cwd, 'scene.png'))
    assert.equal(png.subarray(1, 4).toString(), 'PNG')
    assert.deepEqual((last().files ?? []).map((f: { name?: string }) => f.name).sort(), ['inc/colors.inc', 'inc/objects.inc', 'textures/checker.png'])
  } finally {
    wp.remove()
  }
})

test('slic3r with two STLs and a config: one G-code with both', async () => {
  const ws = workdir('slic3r.ini')
  try {
    for (const [name, size] of [['a', 10], ['b', 14]] as const) {
      writeFileSync(join(ws.cwd, `${name}.scad`), `cube([${size}, ${size}, ${size}]);\n`)
      const m = spawnSync('openscad', ['-o', join(ws.cwd, `${name}.stl`), `${name}.scad`], { cwd: ws.cwd, encoding: 'utf8' })
      assert.equal(m.status, 0, m.stderr)
    }
    const r = await run(ws, 'slic3r.cloud', [s, '--load=slic3r.ini', 'a.stl', 'b.stl', '-o', 'ab.gcode'])
    assert.equal(r.code, 0, r.stderr)
    const t = last()
    assert.match(t.cmd, /--load=slic3r\.ini a\.stl b\.stl /)
    assert.ok((readFileSync(join(ws.cwd, 'ab.gcode'), 'utf8').match(/^G1 /gm) ?? []).length > 100, 'real moves')
  } finally {
    ws.remove()
  }
})
