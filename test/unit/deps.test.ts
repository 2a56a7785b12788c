import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync, ftruncateSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { scanProject, LIMITS, type Project } from '../../src/client/deps/index.js'
import { ClientError } from '../../src/client/errors.js'
import { inDir } from '../helpers/dir.js'

const FIX = resolve('test/fixtures/projects')
const tmp = mkdtempSync(join(tmpdir(), 'rrcloud-deps-'))
after(() => rmSync(tmp, { recursive: true, force: true }))
const NOHOME = join(tmp, 'no-home')
let n = 0

/** Writes files into a fresh folder: { 'a/b.scad': 'text' }. */
function tree (files: Record<string, string>): string {
  const dir = join(tmp, `t${n++}`)
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true })
    writeFileSync(join(dir, rel), text)
  }
  return dir
}
const rels = (p: Project) => p.files.map((f) => f.rel)
const scad = (main: string, opts: { env?: NodeJS.ProcessEnv; with?: string[]; home?: string } = {}) =>
  scanProject('openscad', [{ path: main }], { env: {}, home: NOHOME, ...opts })
test('openscad fixture: use, include, imports, surface data and a library folder, each in its place', () => {
  const p = scad(join(FIX, 'openscad/part/main.scad'), { env: { OPENSCADPATH: join(FIX, 'openscad/libs') } })
  assert.deepEqual(p.mains, [{ path: join(FIX, 'openscad/part/main.scad'), rel: 'part/main.scad' }])
  assert.deepEqual(rels(p), [
    '.lib/threads/pitch.scad', // included beside the library file: stays in .lib
    '.lib/threads/thread.scad',
    'common/units.scad', // ../../common from part/config: the root moves up to hold it
    'part/config/dims.scad',
    'part/data/outline.dxf',
    'part/data/peg.stl',
    'part/data/terrain.dat',
    'part/lib/profile.dxf',
    'part/lib/shapes.scad',
  ])
  assert.equal(p.files.find((f) => f.rel === '.lib/threads/thread.scad')?.path, join(FIX, 'openscad/libs/threads/thread.scad'))
  assert.deepEqual(p.unresolved, [], 'references in comments and strings are not followed')
})

test('openscad: without OPENSCADPATH the library is reported, not guessed', () => {
  const p = scad(join(FIX, 'openscad/part/main.scad'))
  assert.ok(!rels(p).some((r) => r.startsWith('.lib/')))
  assert.deepEqual(p.unresolved, [`${join(FIX, 'openscad/part/main.scad').replace(process.cwd() + '/', '')}:8: use <threads/thread.scad>: not found`])
})

test('openjscad fixture: relative requires, a folder index, STL data and the package.json that sets the module type', () => {
  const p = scanProject('openjscad', [{ path: join(FIX, 'openjscad/main.jscad') }])
  assert.deepEqual(p.mains.map((m) => m.rel), ['main.jscad'])
  assert.deepEqual(rels(p), ['data/knob.stl', 'lib/index.js', 'lib/round.js', 'package.json', 'parts/base.js'])
  assert.deepEqual(p.unresolved, [])
})

test('povray fixture: names are taken from the folder povray runs in', () => {
  const p = inDir(join(FIX, 'povray'), () => scanProject('povray', [{ path: 'scene.pov' }]))
  assert.deepEqual(p.mains, [{ path: join(FIX, 'povray/scene.pov'), rel: 'scene.pov' }])
  assert.deepEqual(rels(p), ['inc/colors.inc', 'inc/objects.inc', 'textures/checker.png'])
  assert.deepEqual(p.unresolved, [])
  // from the folder above, povray itself would not find inc/objects.inc: neither does the scan
  const above = inDir(FIX, () => scanProject('povray', [{ path: 'povray/scene.pov' }]))
  assert.deepEqual(above.mains.map((m) => m.rel), ['povray/scene.pov'])
  assert.deepEqual(rels(above), [])
  assert.equal(above.unresolved.length, 2)
  assert.match(above.unresolved[0], /^povray\/scene\.pov:7: #include "inc\/objects\.inc": not found in .* \(povray looks in the folder it runs in, not beside the scene: run from povray\)$/)
})

test('comments, nested comments, strings, template literals and regular expressions are not references', () => {
  const s = tree({
    'main.scad': '// include <a.scad>\n/* use <b.scad> */ x = "import(\\"c.stl\\")";\nimport("real.stl");\n',
    'real.stl': 'solid\nendsolid\n',
    'main.jscad': "const r = /require\\('\\.\\/a'\\)/; const t = `require('./b')`\n// require('./c')\nconst s = \"import './d.js'\"\nconst half = 4 / 2; module.exports = require('./real') / half\n",
    'real.js': '',
    'scene.pov': '/* outer /* inner */ #include "a.inc" */\n#declare S = "#include \\"b.inc\\""; // #include "c.inc"\n#include "real.inc"\n',
    'real.inc': '',
  })
  assert.deepEqual(rels(scad(join(s, 'main.scad'))), ['real.stl'])
  assert.deepEqual(rels(scanProject('openjscad', [{ path: join(s, 'main.jscad') }])), ['real.js'])
  const pov = inDir(s, () => scanProject('povray', [{ path: 'scene.pov' }]))
  assert.deepEqual([rels(pov), pov.unresolved], [['real.inc'], []])
})

test('computed and absolute names are reported with file:line and a hint; a height is not a file', () => {
  const s = tree({
    'main.scad': 'name = "x";\nimport(str(name, ".stl"));\nsurface(file = name);\nlinear_extrude(h) square(1);\ninclude </abs/lib.scad>\nimport("/abs/a.stl");\nlinear_extrude(file = f);\n',
    'main.jscad': "const a = require(name)\nconst b = require(`./${name}`)\nrequire('@jscad/modeling')\nrequire('/abs/x')\nrequire('./missing')\n",
    'scene.pov': '#include concat("a", ".inc")\nsphere { 0, 1 pigment { image_map { png Name } } }\nheight_field { function 10, 10 { x } }\n',
  })
  const at = (f: string) => join(s, f).replace(process.cwd() + '/', '')
  assert.deepEqual(scad(join(s, 'main.scad')).unresolved, [
    `${at('main.scad')}:2: import(str(name,".stl")): a computed file name, which cannot be followed; send the file with --with`,
    `${at('main.scad')}:3: surface(name): a computed file name, which cannot be followed; send the file with --with`,
    `${at('main.scad')}:5: include </abs/lib.scad>: an absolute path, which the node does not have; use a library folder (OPENSCADPATH)`,
    `${at('main.scad')}:6: import("/abs/a.stl"): an absolute path, which the node does not have; use a relative name`,
    `${at('main.scad')}:7: linear_extrude(f): a computed file name, which cannot be followed; send the file with --with`,
  ])
  assert.deepEqual(scanProject('openjscad', [{ path: join(s, 'main.jscad') }]).unresolved, [
    `${at('main.jscad')}:1: require(name): a computed module name, which cannot be followed; send the file with --with`,
    `${at('main.jscad')}:2: require(\`./\`): a computed module name, which cannot be followed; send the file with --with`,
    `${at('main.jscad')}:4: require("/abs/x"): an absolute path, which the node does not have; use a relative one`,
    `${at('main.jscad')}:5: require("./missing"): not found`,
  ])
  const pov = inDir(s, () => scanProject('povray', [{ path: 'scene.pov' }])).unresolved
  assert.equal(pov.length, 2)
  assert.match(pov[0], /^scene\.pov:1: #include concat: a computed file name/)
  assert.match(pov[1], /^scene\.pov:2: image_map Name: a computed file name/)
})

test('--with: files and folders join the tree and its root; dotfiles are skipped; a missing one is a usage error', () => {
  const s = tree({ 'proj/main.scad': 'cube(1);', 'extra/a.stl': 'x', 'extra/sub/b.dat': 'x', 'extra/.git/HEAD': 'x', 'extra/.hidden': 'x', 'one.txt': 'x' })
  const p = scad(join(s, 'proj/main.scad'), { with: [join(s, 'extra'), join(s, 'one.txt')] })
  assert.deepEqual(p.mains.map((m) => m.rel), ['proj/main.scad'])
  assert.deepEqual(rels(p), ['extra/a.stl', 'extra/sub/b.dat', 'one.txt'])
  assert.deepEqual(rels(scanProject('echo', [{ path: join(s, 'one.txt') }], { with: [join(s, 'extra/a.stl')] })), ['extra/a.stl'])
  assert.throws(() => scad(join(s, 'proj/main.scad'), { with: [join(s, 'nope')] }), (e: unknown) => e instanceof ClientError && e.exit === 2 && /--with .*nope: no such file or folder/.test(e.message))
})

test('loops are followed once', () => {
  const s = tree({ 'a.scad': 'include <b.scad>\n', 'b.scad': 'use <a.scad>\ninclude <b.scad>\n', 'a.jscad': "require('./b')", 'b.js': "require('./a.jscad')" })
  const p = scad(join(s, 'a.scad'))
  assert.deepEqual([p.mains.map((m) => m.rel), rels(p), p.unresolved], [['a.scad'], ['b.scad'], []])
  assert.deepEqual(rels(scanProject('openjscad', [{ path: join(s, 'a.jscad') }])), ['b.js'])
})

test('symbolic links: read through, placed at the link; names in a linked file resolve from its target, as openscad and node do', () => {
  const s = tree({
    'real/shape.scad': 'import("shape.stl");',
    'real/shape.stl': 'x',
    'real/top.scad': 'import("shape.stl");',
    'real/a.js': "require('./dep')",
    'real/dep.js': '',
    'proj/main.scad': 'use <shape.scad>\nuse <dir/shape.scad>\n',
    'proj/main.jscad': "require('./a')",
  })
  symlinkSync(join(s, 'real/shape.scad'), join(s, 'proj/shape.scad'))
  symlinkSync(join(s, 'real/top.scad'), join(s, 'proj/top.scad'))
  symlinkSync(join(s, 'real/a.js'), join(s, 'proj/a.js'))
  symlinkSync(join(s, 'real'), join(s, 'proj/dir'))
  symlinkSync(join(s, 'proj'), join(s, 'real/loop')) // a folder that leads back up
  const p = scad(join(s, 'proj/main.scad'))
  assert.deepEqual(p.files, [
    { path: join(s, 'proj/dir/shape.scad'), rel: 'dir/shape.scad' },
    { path: join(s, 'real/shape.stl'), rel: 'dir/shape.stl' },
    { path: join(s, 'proj/shape.scad'), rel: 'shape.scad' },
    { path: join(s, 'real/shape.stl'), rel: 'shape.stl' },
  ])
  assert.deepEqual(p.unresolved, [])
  // the main input itself is not resolved through its link (openscad 2021.01 looks beside the link)
  assert.match(scad(join(s, 'proj/top.scad')).unresolved.join(), /top\.scad:1: import\("shape\.stl"\): not found/)
  assert.deepEqual(scanProject('openjscad', [{ path: join(s, 'proj/main.jscad') }]).files, [
    { path: join(s, 'proj/a.js'), rel: 'a.js' },
    { path: join(s, 'real/dep.js'), rel: 'dep.js' },
  ])
  // a folder that links back up is walked once
  const w = scad(join(s, 'proj/main.scad'), { with: [join(s, 'real')] })
  assert.deepEqual(rels(w).filter((r) => r.startsWith('real/')), ['real/a.js', 'real/dep.js', 'real/loop/a.js', 'real/loop/main.jscad', 'real/loop/main.scad', 'real/loop/shape.scad', 'real/loop/top.scad', 'real/shape.scad', 'real/shape.stl', 'real/top.scad'])
})

test('library folders: OPENSCADPATH in order, then the user folder; a library stays in .lib', () => {
  const s = tree({
    'proj/main.scad': 'use <gears/gear.scad>\ninclude <bolts.scad>\nuse <mine.scad>\nuse <escape.scad>\n',
    'first/gears/gear.scad': 'include <teeth.scad>\nuse <../bolts.scad>\nmodule g() import("gear.stl");\n',
    'first/gears/teeth.scad': '',
    'first/gears/gear.stl': 'x',
    'first/bolts.scad': '',
    'first/escape.scad': 'include <../outside.scad>\n',
    'second/gears/gear.scad': 'shadowed',
    'second/bolts.scad': 'shadowed',
    'home/.local/share/OpenSCAD/libraries/mine.scad': '',
  })
  const p = scad(join(s, 'proj/main.scad'), { env: { OPENSCADPATH: `${join(s, 'first')}:${join(s, 'second')}` }, home: join(s, 'home') })
  assert.deepEqual(p.mains.map((m) => m.rel), ['main.scad'], 'library files do not move the root')
  assert.deepEqual(rels(p), ['.lib/bolts.scad', '.lib/escape.scad', '.lib/gears/gear.scad', '.lib/gears/gear.stl', '.lib/gears/teeth.scad', '.lib/mine.scad'])
  assert.equal(p.files.find((f) => f.rel === '.lib/bolts.scad')?.path, join(s, 'first/bolts.scad'))
  assert.equal(p.files.find((f) => f.rel === '.lib/mine.scad')?.path, join(s, 'home/.local/share/OpenSCAD/libraries/mine.scad'))
  assert.deepEqual(p.unresolved, [`${join(s, 'first/escape.scad').replace(process.cwd() + '/', '')}:1: include <../outside.scad>: not found`])
})

test('openscad: an import in an included file is sent from where 2021.01 looks and from where later releases look', () => {
  const s = tree({ 'main.scad': 'include <sub/part.scad>\n', 'sub/part.scad': 'import("p.stl");\nimport("only-here.stl");\n', 'p.stl': 'x', 'sub/p.stl': 'x', 'sub/only-here.stl': 'x' })
  assert.deepEqual(rels(scad(join(s, 'main.scad'))), ['p.stl', 'sub/only-here.stl', 'sub/p.stl', 'sub/part.scad'])
})

test('unknown services and slic3r: the main inputs only, in order, laid out from their common folder', () => {
  const s = tree({ 'm/a.txt': 'include <x.scad>', 'c/prusa.ini': 'x', 'm/part.stl': 'x' })
  for (const service of ['echo', 'printrun', 'nothing']) {
    const p = scanProject(service, [{ path: join(s, 'm/a.txt') }])
    assert.deepEqual(p, { mains: [{ path: join(s, 'm/a.txt'), rel: 'a.txt' }], files: [], unresolved: [] })
  }
  const p = scanProject('slic3r', [{ path: join(s, 'c/prusa.ini'), prearg: '--load=' }, { path: join(s, 'm/part.stl') }])
  assert.deepEqual(p, { mains: [{ path: join(s, 'c/prusa.ini'), rel: 'c/prusa.ini' }, { path: join(s, 'm/part.stl'), rel: 'm/part.stl' }], files: [], unresolved: [] })
})

test('limits: depth, file count, and big files sent without being read', () => {
  const chain: Record<string, string> = {}
  for (let i = 0; i < 70; i++) chain[`f${i}.scad`] = `include <f${i + 1}.scad>\n`
  chain['f70.scad'] = ''
  const s = tree(chain)
  const deep = scad(join(s, 'f0.scad'))
  assert.equal(deep.files.length, LIMITS.depth)
  assert.equal(deep.unresolved.length, 1)
  assert.match(deep.unresolved[0], /f64\.scad: references deeper than 64 levels were not followed$/)

  const many = join(tmp, 'many')
  mkdirSync(many)
  for (let i = 0; i < LIMITS.files + 5; i++) writeFileSync(join(many, `${i}.dat`), '')
  const full = scad(join(s, 'f70.scad'), { with: [many] })
  assert.equal(full.files.length, LIMITS.files)
  assert.deepEqual(full.unresolved, [`more than ${LIMITS.files} files: the rest were left out`])

  const big = tree({ 'main.scad': 'import("big.stl");', 'small.scad': '' })
  const fd = openSync(join(big, 'big.stl'), 'w')
  writeFileSync(fd, 'include <small.scad>\n')
  ftruncateSync(fd, LIMITS.parseBytes + 1)
  closeSync(fd)
  const huge = tree({ 'main.scad': 'include <huge.scad>', 'small.scad': '' })
  const fd2 = openSync(join(huge, 'huge.scad'), 'w')
  writeFileSync(fd2, 'include <small.scad>\n')
  ftruncateSync(fd2, LIMITS.parseBytes + 1)
  closeSync(fd2)
  assert.deepEqual(rels(scad(join(big, 'main.scad'))), ['big.stl'])
  assert.deepEqual(rels(scad(join(huge, 'main.scad'))), ['huge.scad'], 'too big to parse: sent, not followed')
})
