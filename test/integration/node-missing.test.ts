// A model whose files did not all arrive must fail, never succeed with a different result: OpenSCAD
// warns about a file it cannot open, leaves that part out and exits with 0. Real tools, real HTTP.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fixtures, getJson, post, testNode, waitTask, type TestNode } from '../helpers/node.js'
import { ensureBuilt, run, workdir, type Workdir } from '../fixtures/client/harness.js'
import { prepareRunDir, probeSandbox, toolEnv, wrap, type Sandbox } from '../../src/executors/sandbox.js'
import { builtinServicesDir, loadDescriptors, resolveService } from '../../src/executors/services.js'

const says = join(fixtures, 'missing-services')
const PREFIX = 'the tool could not open a file of the model: '
const CUBE = 'cube([10, 10, 10]);\n'
const mcad = existsSync('/usr/share/openscad/libraries/MCAD/involute_gears.scad')
const GEAR = 'use <MCAD/involute_gears.scad>\ngear(number_of_teeth=8, circular_pitch=200, gear_thickness=2, rim_thickness=2, hub_thickness=2, bore_diameter=1);\n'

let node: TestNode
let w: Workdir

before(async () => {
  ensureBuilt()
  node = await testNode({ serviceDirs: [builtinServicesDir, says] })
  w = workdir('cube.scad')
  writeFileSync(join(w.cwd, 'inc.scad'), `include <lib.scad>\n${CUBE}`)
  writeFileSync(join(w.cwd, 'imp.scad'), `import("part.stl");\n${CUBE}`)
})
after(async () => {
  await node.stop()
  w.remove()
})

async function task (base: string, service: string, content: string, name: string) {
  const r = await post(base, { service }, [['fileIn0', content, name]])
  assert.equal(r.status, 201, JSON.stringify(r.body))
  const t = await waitTask(base, r.body.id, 60000)
  const out = await fetch(`${base}/api/v1/tasks/${t.id}/output`)
  const log = await (await fetch(`${base}/api/v1/tasks/${t.id}/log`)).text()
  return { t, status: out.status, out: await out.text(), log }
}

const facets = (stl: string) => (stl.match(/facet normal/g) ?? []).length

test('openscad: a model one of whose files is not there fails with the tool\'s own message, though it exits with 0', async () => {
  const cases: Array<[string, string]> = [
    ['include <lib.scad>', "WARNING: Can't open include file 'lib.scad'."],
    ['use <lib.scad>', "WARNING: Can't open library 'lib.scad'."],
    ['import("part.stl");', "WARNING: Can't open import file '/task/part.stl', import() at line 1"],
    ['import("part.off");', "WARNING: Can't open import file '/task/part.off', import() at line 1"],
    ['linear_extrude(1) import("part.dxf");', "WARNING: Can't open DXF file '/task/part.dxf'."],
    ['linear_extrude(1) import("part.svg");', "ERROR: Can't open file '/task/part.svg', import() at line 1"],
    ['surface("height.dat");', "WARNING: The file '/task/height.dat' couldn't be opened."],
    ['dxf_linear_extrude(file = "part.dxf", height = 1);', "WARNING: Can't open DXF file '/task/part.dxf'."],
  ]
  for (const [line, message] of cases) {
    const { t, status, log } = await task(node.url, 'openscad', `${line}\n${CUBE}`, 'model.scad')
    assert.equal(t.status, 'failed', `${line}: ${log}`)
    assert.equal(t.error, PREFIX + message, line)
    assert.equal(t.exitCode, 0, 'the tool itself said all was well')
    assert.equal(status, 409, 'no output is kept')
    assert.ok(log.includes(message), 'the log has the whole story')
  }
})

test('openscad: a complete model still completes; its own libraries are found with OPENSCADPATH set', async () => {
  const { t, out } = await task(node.url, 'openscad', CUBE, 'cube.scad')
  assert.equal(t.status, 'complete', t.error)
  assert.equal(facets(out), 12)
  if (!mcad) return
  const gear = await task(node.url, 'openscad', GEAR, 'gear.scad')
  assert.equal(gear.t.status, 'complete', gear.log)
  assert.ok(facets(gear.out) > 12, 'a gear, from the MCAD library')
})

test('a line that matches `missing` fails the task, the first one is its error, and what the tool writes as output is not read', async () => {
  const bad = await task(node.url, 'says', "err: all fine\nerr: cannot open 'x.inc'\nerr: no such part y\n", 'a.txt')
  assert.equal(bad.t.status, 'failed')
  assert.equal(bad.t.error, `${PREFIX}cannot open 'x.inc'`)
  assert.match(bad.log, /no such part y/)
  const long = await task(node.url, 'says', `err: no such part ${'x'.repeat(1000)}  \r\n`, 'b.txt')
  assert.equal(long.t.error, PREFIX + `no such part ${'x'.repeat(1000)}`.slice(0, 300), 'trimmed, at most 300 characters')
  const fine = await task(node.url, 'says', "out: cannot open 'x.inc'\nerr: so it says\nerr: ECHO: cannot open 'y'\n", 'c.txt')
  assert.equal(fine.t.status, 'complete', fine.t.error)
  assert.match(fine.out, /^cannot open 'x\.inc'$/m)
})

test('$task in env is the tool\'s folder as it sees it: /task in the sandbox, the task\'s folder without one', async () => {
  assert.equal((await getJson(`${node.url}/api/v1/meta`)).sandbox, 'bwrap')
  const boxed = await task(node.url, 'says', 'nothing\n', 'a.txt')
  assert.match(boxed.out, /^LIBS=\/task\/\.lib:\/usr\/share\/libs\ncwd=\/task$/m)
  const bare = await testNode({ serviceDirs: [says], sandbox: 'none' })
  try {
    const { t, out } = await task(bare.url, 'says', 'nothing\n', 'a.txt')
    const cwd = /^cwd=(.*)$/m.exec(out)![1]
    assert.equal(cwd, join(bare.dataDir, 'tasks', 'run', t.id))
    assert.match(out, new RegExp(`^LIBS=${cwd}/\\.lib:/usr/share/libs$`, 'm'))
  } finally { await bare.stop() }
})

test('openscad finds libraries under .lib of its task folder, and its own after them, sandboxed or not', async () => {
  const openscad = resolveService(loadDescriptors([builtinServicesDir]).find((d) => d.name === 'openscad')!)
  assert.ok(openscad.available && openscad.exe, openscad.reason)
  const dir = mkdtempSync(join(tmpdir(), 'rrcloud-lib-'))
  try {
    chmodSync(dir, 0o755)
    writeFileSync(join(dir, 'model.scad'), `use <mine.scad>\n${mcad ? GEAR : ''}mine();\n`)
    writeFileSync(join(dir, 'mine.scad'), 'module mine() translate([20, 0, 0]) cube(3);\n')
    const inputs = [{ host: join(dir, 'model.scad'), name: 'model.scad' }, { host: join(dir, 'mine.scad'), name: '.lib/mine.scad' }]
    for (const sb of [probeSandbox('auto'), probeSandbox('none')] as Sandbox[]) {
      const runDir = join(dir, `run-${sb.mode}`)
      prepareRunDir(sb, runDir, inputs)
      const cmd = wrap(sb, { exe: openscad.exe!, args: ['model.scad', '-oout.stl'], runDir, inputs, ro: [], env: {}, limits: {} })
      const r = spawnSync(cmd.exe, cmd.args, { cwd: runDir, env: toolEnv(sb, runDir, openscad.env), encoding: 'utf8' })
      assert.equal(r.status, 0, r.stderr)
      assert.doesNotMatch(r.stderr, /WARNING/, `${sb.mode}: ${r.stderr}`)
      const stl = readFileSync(join(runDir, 'out.stl'), 'utf8')
      assert.ok(facets(stl) > (mcad ? 12 : 11), `${sb.mode}: the library's cube${mcad ? ' and the gear' : ''}`)
    }
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('the client: a task that failed so says why and exits with 1; --local fails the same way, here', async () => {
  const s = `--s=127.0.0.1:${node.port}`
  const remote = await run(w, 'openscad.cloud', [s, 'inc.scad', '-oinc.stl'])
  assert.equal(remote.code, 1, remote.stderr)
  assert.match(remote.stderr, /openscad task \d+-\d{6} on 127\.0\.0\.1:\d+ failed: the tool could not open a file of the model: WARNING: Can't open include file 'lib\.scad'\./)
  assert.equal(existsSync(join(w.cwd, 'inc.stl')), false)
  const tasks = node.runner.list().length
  for (const [model, message] of [['inc.scad', "WARNING: Can't open include file 'lib.scad'."], ['imp.scad', `WARNING: Can't open import file '${join(w.cwd, 'part.stl')}', import() at line 1`]]) {
    const local = await run(w, 'run.js', ['--local', 'openscad', model])
    assert.equal(local.code, 1, local.stderr)
    assert.ok(local.stderr.includes(`openscad failed here (${PREFIX}${message})`), local.stderr)
    assert.equal(existsSync(join(w.cwd, model.replace('.scad', '.stl'))), false)
  }
  assert.equal(node.runner.list().length, tasks, 'the node was not asked')
  const ok = await run(w, 'run.js', ['--local', 'openscad', 'cube.scad'])
  assert.equal(ok.code, 0, ok.stderr)
  assert.equal(facets(readFileSync(join(w.cwd, 'cube.stl'), 'utf8')), 12)
})

test('--local: the files beside the model are found, and so are libraries of the user\'s own OPENSCADPATH', async () => {
  writeFileSync(join(w.cwd, 'lib.scad'), 'translate([20, 0, 0]) cube(2);\n')
  const libs = join(w.home, 'libs')
  mkdirSync(libs)
  writeFileSync(join(libs, 'mine.scad'), 'module mine() translate([-20, 0, 0]) cube(2);\n')
  writeFileSync(join(w.cwd, 'both.scad'), `include <lib.scad>\nuse <mine.scad>\nmine();\n${CUBE}`)
  const r = await run(w, 'run.js', ['--local', 'openscad', 'both.scad'], { OPENSCADPATH: libs })
  assert.equal(r.code, 0, r.stderr)
  assert.equal(facets(readFileSync(join(w.cwd, 'both.stl'), 'utf8')), 36, 'three cubes')
})
