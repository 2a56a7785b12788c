import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createReadStream, existsSync, lstatSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { sleep, testNode, type TestNode } from '../helpers/node.js'
import { ensureBuilt, run, workdir, type Workdir } from '../fixtures/client/harness.js'

let node: TestNode
let s: string
let w: Workdir

before(async () => {
  ensureBuilt()
  node = await testNode()
  s = `--s=127.0.0.1:${node.port}`
  w = workdir('cube.scad', 'cube.jscad', 'slic3r.ini', 'sphere.pov')
  writeFileSync(join(w.cwd, 'bad.scad'), 'cube([10, 10, 10]\n')
})
after(async () => {
  await node.stop()
  w.remove()
})

const facets = (file: string) => (readFileSync(join(w.cwd, file), 'utf8').match(/facet normal/g) ?? []).length
const noPartFiles = () => assert.deepEqual(readdirSync(w.cwd).filter((f) => f.endsWith('.part')), [])

test('openscad.cloud test.scad -otest.stl: a real STL where asked, exit 0, nothing on stdout', async () => {
  for (const [args, file] of [[['-otest.stl'], 'test.stl'], [['-o', 'test2.stl'], 'test2.stl'], [['--output=test3.stl'], 'test3.stl'], [[], 'cube.stl']] as const) {
    const r = await run(w, 'openscad.cloud', [s, 'cube.scad', ...args])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, '')
    assert.equal(facets(file), 12, `${args.join(' ')}: a cube has 12 triangles`)
  }
  noPartFiles()
})

test('openjscad.cloud test.jscad -otest.stl renders with @jscad/cli on the node', async () => {
  const r = await run(w, 'openjscad.cloud', [s, 'cube.jscad', '-ojscad.stl'])
  assert.equal(r.code, 0, r.stderr)
  const stl = readFileSync(join(w.cwd, 'jscad.stl'))
  // binary STL: 80-byte header, then the triangle count
  assert.equal(stl.readUInt32LE(80), 12)
  assert.equal(stl.length, 84 + 12 * 50)
})

test('slic3r.cloud --load=prusa.conf huge.stl --output=huge.gcode uploads the config as prearg', async () => {
  assert.equal((await run(w, 'openscad.cloud', [s, 'cube.scad', '-oslice.stl'])).code, 0)
  const r = await run(w, 'slic3r.cloud', [s, '--load=slic3r.ini', 'slice.stl', '--output=slice.gcode'])
  assert.equal(r.code, 0, r.stderr)
  const gcode = readFileSync(join(w.cwd, 'slice.gcode'), 'utf8')
  assert.match(gcode, /; layer_height = 0\.3/, 'the uploaded config was used')
  assert.ok((gcode.match(/^G1 /gm) ?? []).length > 100, 'real moves')
  const t = node.runner.list().find((x) => x.service === 'slic3r')!
  assert.equal(t.in[0].prearg, '--load=')
  assert.match(t.cmd, /^slic3r --no-gui --load=slic3r\.ini slice\.stl --output=\S+\.gcode$/, "the files under their own names")
})

test('povray.cloud scene.pov writes a PNG next to the input', async () => {
  const r = await run(w, 'povray.cloud', [s, 'sphere.pov'])
  assert.equal(r.code, 0, r.stderr)
  assert.deepEqual([...readFileSync(join(w.cwd, 'sphere.png')).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
})

test('echo.cloud writes to stdout without -o, to the file with it', async () => {
  writeFileSync(join(w.cwd, 'a.txt'), 'hello ')
  writeFileSync(join(w.cwd, 'b.txt'), 'world\n')
  const r = await run(w, 'echo.cloud', [s, 'a.txt', 'b.txt'])
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.stdout, 'hello world\n')
  assert.equal((await run(w, 'echo.cloud', [s, 'a.txt', '-oecho.out'])).code, 0)
  assert.equal(readFileSync(join(w.cwd, 'echo.out'), 'utf8'), 'hello ')
})

test('an output that is a device or fifo is written into, never replaced', async () => {
  const fifo = join(w.cwd, 'out.fifo')
  execFileSync('mkfifo', [fifo])
  writeFileSync(join(w.cwd, 'f.txt'), 'through a fifo\n')
  for (const args of [[s, 'f.txt', `-o${fifo}`], ['--local', 'f.txt', `-o${fifo}`]]) {
    const chunks: Buffer[] = []
    const reader = new Promise<void>((resolve, reject) => createReadStream(fifo).on('data', (c) => chunks.push(c as Buffer)).on('end', resolve).on('error', reject))
    const r = await run(w, 'echo.cloud', args)
    await Promise.race([reader, sleep(10000).then(() => { throw new Error('nothing was written into the fifo') })])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(Buffer.concat(chunks).toString(), 'through a fifo\n')
    assert.ok(lstatSync(fifo).isFIFO(), `${args[0]}: still a fifo`)
  }
  noPartFiles()
})

test("a failing task: the tool's exit status, its log on stderr, no output file", async () => {
  const r = await run(w, 'openscad.cloud', [s, 'bad.scad', '-obad.stl'])
  assert.equal(r.code, 1, 'openscad exits 1 on a syntax error')
  assert.match(r.stderr, /Parser error/, 'the task log is shown')
  assert.match(r.stderr, /openscad task \d+-\d{6} on 127\.0\.0\.1:\d+ failed: exited with code 1/)
  assert.equal(existsSync(join(w.cwd, 'bad.stl')), false)
  noPartFiles()
})

test('--local runs the tool here without any node: result where asked, failures with the log', async () => {
  const tasks = node.runner.list().length
  const r = await run(w, 'openscad.cloud', ['--local', 'cube.scad', '-olocal.stl'])
  assert.equal(r.code, 0, r.stderr)
  assert.equal(facets('local.stl'), 12)
  const bad = await run(w, 'run.js', ['--local', 'openscad', 'bad.scad'])
  assert.equal(bad.code, 1)
  assert.match(bad.stderr, /Parser error[\s\S]*openscad failed here \(exit code 1\)/)
  assert.equal(existsSync(join(w.cwd, 'bad.stl')), false)
  const sl = await run(w, 'run.js', ['--local', 'slic3r', '--load=slic3r.ini', 'local.stl'])
  assert.equal(sl.code, 0, sl.stderr)
  assert.match(readFileSync(join(w.cwd, 'local.gcode'), 'utf8'), /; layer_height = 0\.3/)
  assert.equal(node.runner.list().length, tasks, 'the node was not asked')
})
