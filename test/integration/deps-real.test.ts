// The scanned files alone are enough: each fixture project, copied by rel into an empty folder
// (`.lib/` files into <folder>/.lib, with OPENSCADPATH set to it, as the node runs openscad), gives
// the tool's output equal to the one it gives in the original folder; and a file left out makes the
// tool say which one it misses.
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { inflateSync } from 'node:zlib'
import { scanProject, type Project } from '../../src/client/deps/index.js'
import { sameMesh } from '../helpers/stl.js'
import { inDir } from '../helpers/dir.js'

const FIX = resolve('test/fixtures/projects')
const JSCAD = resolve('node_modules/@jscad/cli/cli.js')
const tmp = mkdtempSync(join(tmpdir(), 'rrcloud-deps-real-'))
after(() => rmSync(tmp, { recursive: true, force: true }))
const missing = (exe: string) => (spawnSync(exe, ['--version']).error ? `${exe} is not installed` : false)
let n = 0

/** Copies the mains and found files by rel into a fresh folder, leaving out `without`. */
function copy (p: Project, without?: string): string {
  const dir = join(tmp, `p${n++}`)
  for (const f of [...p.mains, ...p.files]) {
    if (f.rel === without) continue
    mkdirSync(dirname(join(dir, f.rel)), { recursive: true })
    copyFileSync(f.path, join(dir, f.rel))
  }
  return dir
}

/** Runs a tool (no shell) and returns what it printed. */
function run (exe: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(exe, args, { cwd, env: { PATH: process.env.PATH, HOME: tmp, ...env }, encoding: 'utf8', timeout: 60_000 })
  return { code: r.status, out: `${r.stdout}${r.stderr}` }
}

/** A PNG's header and pixels, without the chunks that carry the render's date. */
function pixels (file: string): Buffer {
  const b = readFileSync(file)
  const keep: Buffer[] = []
  const idat: Buffer[] = []
  for (let o = 8; o < b.length;) {
    const len = b.readUInt32BE(o)
    const type = b.toString('latin1', o + 4, o + 8)
    if (type === 'IHDR') keep.push(b.subarray(o + 8, o + 8 + len))
    if (type === 'IDAT') idat.push(b.subarray(o + 8, o + 8 + len))
    o += 12 + len
  }
  return Buffer.concat([...keep, inflateSync(Buffer.concat(idat))])
}

test('openscad: the scanned project renders the same STL; each file left out is named in the error', { skip: missing('openscad'), timeout: 120_000 }, () => {
  const part = join(FIX, 'openscad/part')
  const env = { OPENSCADPATH: join(FIX, 'openscad/libs') }
  const p = scanProject('openscad', [{ path: join(part, 'main.scad') }], { env, home: join(tmp, 'home') })
  const here = run('openscad', ['-o', join(tmp, 'here.stl'), 'main.scad'], part, env)
  assert.equal(here.code, 0, here.out)
  assert.doesNotMatch(here.out, /WARNING|ERROR/)

  // as the node runs it: from the task folder's root, the main at its rel
  const dir = copy(p)
  const there = run('openscad', ['-o', 'out.stl', p.mains[0].rel], dir, { OPENSCADPATH: join(dir, '.lib') })
  assert.equal(there.code, 0, there.out)
  assert.doesNotMatch(there.out, /WARNING|ERROR/)
  const stl = readFileSync(join(dir, 'out.stl'))
  assert.ok((stl.toString().match(/facet normal/g) ?? []).length > 100)
  assert.ok(sameMesh(stl, join(tmp, 'here.stl')), 'openscad output is the same mesh')

  const messages: Record<string, RegExp> = {
    '.lib/threads/thread.scad': /^WARNING: Can't open library 'threads\/thread\.scad'\.$/m,
    '.lib/threads/pitch.scad': /^WARNING: Can't open include file 'pitch\.scad'\.$/m,
    'common/units.scad': /^WARNING: Can't open include file '\.\.\/\.\.\/common\/units\.scad'\.$/m,
    'part/config/dims.scad': /^WARNING: Can't open include file 'config\/dims\.scad'\.$/m,
    'part/lib/shapes.scad': /^WARNING: Can't open library 'lib\/shapes\.scad'\.$/m,
    'part/lib/profile.dxf': /^WARNING: Can't open DXF file '.*\/part\/lib\/profile\.dxf'\.$/m,
    'part/data/outline.dxf': /^WARNING: Can't open DXF file '.*\/part\/data\/outline\.dxf'\.$/m,
    'part/data/peg.stl': /^WARNING: Can't open import file '.*\/part\/data\/peg\.stl', import\(\) at line 14$/m,
    'part/data/terrain.dat': /^WARNING: The file '.*\/part\/data\/terrain\.dat' couldn't be opened\.$/m,
  }
  assert.deepEqual(Object.keys(messages).sort(), p.files.map((f) => f.rel))
  for (const [rel, re] of Object.entries(messages)) {
    const d = copy(p, rel)
    const r = run('openscad', ['-o', 'out.stl', p.mains[0].rel], d, { OPENSCADPATH: join(d, '.lib') })
    assert.match(r.out, re, `without ${rel}`)
  }
})

test('openjscad: the scanned project gives the same STL; a require left out is named', { skip: missing('node'), timeout: 120_000 }, () => {
  const root = join(FIX, 'openjscad')
  const env = { NODE_PATH: resolve('node_modules') } // as the node's descriptor sets it
  const p = scanProject('openjscad', [{ path: join(root, 'main.jscad') }])
  const here = run(process.execPath, [JSCAD, 'main.jscad', '-o', join(tmp, 'here-j.stl')], root, env)
  assert.equal(here.code, 0, here.out)
  const dir = copy(p)
  const there = run(process.execPath, [JSCAD, p.mains[0].rel, '-o', 'out.stl'], dir, env)
  assert.equal(there.code, 0, there.out)
  const stl = readFileSync(join(dir, 'out.stl'))
  assert.equal(stl.readUInt32LE(80) * 50 + 84, stl.length, 'a binary STL')
  assert.ok(stl.equals(readFileSync(join(tmp, 'here-j.stl'))), 'jscad output is the same, byte for byte')

  const r = run(process.execPath, [JSCAD, p.mains[0].rel, '-o', 'out.stl'], copy(p, 'lib/round.js'), env)
  assert.match(r.out, /^Error: Cannot find module '\.\.\/lib\/round\.js'$/m)
  const d = run(process.execPath, [JSCAD, p.mains[0].rel, '-o', 'out.stl'], copy(p, 'data/knob.stl'), env)
  assert.match(d.out, /^Error: Cannot find module '\.\/data\/knob\.stl'$/m)
})

test('povray: the scanned scene renders the same pixels from the task root; an include left out is named', { skip: missing('povray'), timeout: 120_000 }, () => {
  const root = join(FIX, 'povray')
  const args = (scene: string, out: string) => ['-D', '+FN', `+I${scene}`, `+O${out}`, '+W40', '+H30']
  const p = inDir(root, () => scanProject('povray', [{ path: 'scene.pov' }]))
  const here = run('povray', args('scene.pov', join(tmp, 'here.png')), root)
  assert.equal(here.code, 0, here.out)
  const dir = copy(p)
  const there = run('povray', args(p.mains[0].rel, 'out.png'), dir)
  assert.equal(there.code, 0, there.out)
  assert.ok(pixels(join(dir, 'out.png')).equals(pixels(join(tmp, 'here.png'))), 'the same image')

  // povray wraps its messages at 80 columns, going on in a line that starts with one space
  const unwrap = (s: string) => s.replace(/\n (?=\S)/g, ' ')
  const inc = unwrap(run('povray', args(p.mains[0].rel, 'out.png'), copy(p, 'inc/colors.inc')).out)
  assert.match(inc, /^File 'inc\/objects\.inc' line 1: Possible Parse Error: Cannot find file 'inc\/colors\.inc', even after trying to append file type extension\.$/m)
  assert.match(inc, /^File 'inc\/objects\.inc' line 1: Parse Error: Cannot open include file inc\/colors\.inc\.$/m)
  const img = unwrap(run('povray', args(p.mains[0].rel, 'out.png'), copy(p, 'textures/checker.png')).out)
  assert.match(img, /^File 'scene\.pov' line 13: Possible Parse Error: Cannot find file 'textures\/checker', even after trying to append file type extension\.$/m)
  assert.match(img, /^File 'scene\.pov' line 13: Possible Parse Error: Cannot find image file\.$/m)
})
