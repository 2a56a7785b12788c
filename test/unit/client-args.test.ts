import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { rewriteArgs, splitGlobal, type ServiceShape } from '../../src/client/args.js'
import { ClientError } from '../../src/client/errors.js'
import { localDescriptors, shapeOf } from '../../src/client/shapes.js'
import { installCommand } from '../../src/client/doctor.js'

const dir = mkdtempSync(join(tmpdir(), 'rrcloud-args-'))
for (const f of ['test.scad', 'prusa.conf', 'huge.stl', 'scene.pov', 'a.txt', 'b.txt', 'model.stl']) writeFileSync(join(dir, f), 'x')
mkdirSync(join(dir, 'sub'))
after(() => rmSync(dir, { recursive: true, force: true }))
const shape = (name: string): ServiceShape => shapeOf(localDescriptors().find((d) => d.name === name)!)
const rw = (name: string, ...args: string[]) => rewriteArgs(shape(name), args, dir)
const at = (f: string) => join(dir, f)
const fails = (fn: () => unknown, re: RegExp, exit = 2) => assert.throws(fn, (e: unknown) => e instanceof ClientError && re.test(e.message) && e.exit === exit)

test('splitGlobal takes the client options, before or among the tool arguments, and stops at --', () => {
  const { opts, rest } = splitGlobal(['--s=host:1234', '--notifier', 'http://x/ping-$id', 'slic3r', '--load=prusa.conf', '--wait', 'huge.stl', '--token=t', '--local', '--json', '--', '--wait'])
  assert.deepEqual(opts, { server: 'host:1234', notifier: 'http://x/ping-$id', wait: true, token: 't', local: true, noLocalFallback: false, json: true, with: [], noCache: false })
  assert.equal(splitGlobal(['openscad', 'x.scad', '--no-local-fallback']).opts.noLocalFallback, true)
  // --with is repeatable, in either spelling; --no-cache is a switch
  const w = splitGlobal(['openscad', '--with=lib', 'x.scad', '--with', 'data/a.dat', '--no-cache'])
  assert.deepEqual([w.opts.with, w.opts.noCache, w.rest], [['lib', 'data/a.dat'], true, ['openscad', 'x.scad']])
  assert.deepEqual(rest, ['slic3r', '--load=prusa.conf', 'huge.stl', '--wait'])
  assert.deepEqual(splitGlobal(['--server', 'a', 'x']).opts.server, 'a')
  assert.deepEqual(splitGlobal(['a', '--wait'], true).rest, ['a', '--wait'])
  fails(() => splitGlobal(['--s']), /--s needs a value/)
})

test('every spelling of the output is taken out and resolved; inputs become absolute paths', () => {
  for (const args of [['-otest.stl'], ['-o', 'test.stl'], ['--output=test.stl'], ['--output', 'test.stl']]) {
    assert.deepEqual(rw('openscad', 'test.scad', ...args), { inputs: [{ path: at('test.scad') }], output: at('test.stl'), explicitOutput: true }, args.join(' '))
  }
  assert.equal(rw('openscad', '-o', 'sub/x.stl', 'test.scad').output, at('sub/x.stl'))
})

test("slic3r: --load= becomes the input's prearg, in argument order, and --output= the result", () => {
  assert.deepEqual(rw('slic3r', '--load=prusa.conf', 'huge.stl', '--output=huge.gcode'), {
    inputs: [{ path: at('prusa.conf'), prearg: '--load=' }, { path: at('huge.stl') }],
    output: at('huge.gcode'),
    explicitOutput: true,
  })
  assert.deepEqual(rw('slic3r', '--load', 'prusa.conf', 'huge.stl').inputs[0], { path: at('prusa.conf'), prearg: '--load=' })
})

test("without an output the result goes next to the model, with the service's extension", () => {
  assert.equal(rw('openscad', 'test.scad').output, at('test.stl'))
  assert.equal(rw('slic3r', '--load=prusa.conf', 'huge.stl').output, at('huge.gcode'))
  assert.equal(rw('povray', 'scene.pov').output, at('scene.png'))
  assert.equal(rw('echo', 'a.txt').output, undefined, 'echo has no extension: its result goes to stdout')
  assert.equal(rw('echo', 'a.txt').explicitOutput, false)
  assert.equal(rw('openscad', 'model.stl').output, at('model.out.stl'), 'never over an input')
})

test("povray's own +I and +O forms are understood", () => {
  assert.deepEqual(rw('povray', '+Iscene.pov', '+Oout.png'), { inputs: [{ path: at('scene.pov') }], output: at('out.png'), explicitOutput: true })
})

test('mistakes are usage errors that say what to do', () => {
  fails(() => rw('openscad', 'missing.scad'), /input file missing\.scad not found/)
  fails(() => rw('openscad', 'sub'), /input sub is not a file/)
  fails(() => rw('openscad', 'test.scad', '-Dx=1'), /-Dx=1: only input files \(and -oFILE\) can be given to openscad/)
  fails(() => rw('openscad', 'test.scad', '-oa.stl', '-ob.stl'), /output is given twice/)
  fails(() => rw('openscad', 'test.scad', '-o'), /output file name is missing/)
  fails(() => rw('openscad'), /no input file given/)
  fails(() => rw('openscad', 'test.scad', 'a.txt'), /openscad takes 1 input file\(s\), got 2/)
  fails(() => rw('slic3r', '--load=missing.conf', 'huge.stl'), /input file missing\.conf not found/)
  assert.equal(rw('echo', 'a.txt', 'b.txt').inputs.length, 2)
})

test('install hints come from the descriptors: apt and npm packages', () => {
  assert.equal(installCommand('apt:openscad'), 'apt-get install openscad')
  assert.equal(installCommand('npm:@jscad/cli'), 'npm install -g @jscad/cli')
})
