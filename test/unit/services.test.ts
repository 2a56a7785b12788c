import { test } from 'node:test'
import assert from 'node:assert/strict'
import { allowedPreargs, builtinServicesDir, compose, loadDescriptors, parseDescriptor, resolveService, ServiceConfigError, taskEnv } from '../../src/executors/services.js'

const shipped = () => loadDescriptors([builtinServicesDir])

test('the shipped descriptors parse, and compose argv the seed\'s way', () => {
  const byName = new Map(shipped().map((d) => [d.name, resolveService(d, '/usr/bin:/bin')]))
  assert.deepEqual([...byName.keys()], ['echo', 'openjscad', 'openscad', 'povray', 'printrun', 'slic3r'])
  assert.equal(byName.get('printrun')!.available, false, 'offered only by a node with a printer')
  const slic3r = { ...byName.get('slic3r')!, exe: '/usr/bin/slic3r', args: ['--no-gui'] }
  assert.deepEqual(allowedPreargs(slic3r), ['--load='])
  const c = compose(slic3r, '1-000001', [{ path: 'tasks/in/a.ini', prearg: '--load=' }, { path: 'tasks/in/b.stl' }], 'tasks/out')
  assert.deepEqual(c.args, ['--no-gui', '--load=tasks/in/a.ini', 'tasks/in/b.stl', '--output=tasks/out/1-000001.gcode'])
  assert.equal(c.outFile, 'tasks/out/1-000001.gcode')
  const scad = compose({ ...byName.get('openscad')!, exe: 'openscad', args: [] }, '7-000007', [{ path: 'in.scad' }], 'out')
  assert.deepEqual(scad.args, ['in.scad', '-oout/7-000007.stl'])
  const jscad = compose({ ...byName.get('openjscad')!, args: [] }, '7-000007', [{ path: 'in.jscad' }], 'out')
  assert.deepEqual(jscad.args, ['in.jscad', '-o', 'out/7-000007.stl'])
  const echo = compose({ ...byName.get('echo')!, args: [] }, '7-000007', [{ path: 'a' }, { path: 'b' }], 'out')
  assert.deepEqual(echo, { args: ['a', 'b'], outFile: 'out/7-000007', stdoutTo: 'out/7-000007' })
  const pov = compose({ ...byName.get('povray')!, exe: 'povray', args: ['-D'] }, '7-000007', [{ path: 's.pov' }], 'out')
  assert.deepEqual(pov.args, ['-D', '+Is.pov', '+Oout/7-000007.png'])
})

test('a tool that is not installed is not offered, and the reason names the package', () => {
  const d = parseDescriptor('cura', 'cmd = CuraEngine-nowhere | cura-nowhere\nprovides = apt:cura-engine\n', 'cura.conf')
  const r = resolveService(d, '/usr/bin:/bin')
  assert.equal(r.available, false)
  assert.equal(r.reason, 'CuraEngine-nowhere or cura-nowhere not found (install apt:cura-engine)')
  const alt = resolveService(parseDescriptor('x', 'cmd = not-here-at-all --a | cat --b\n', 'x.conf'), '/usr/bin:/bin')
  assert.equal(alt.available, true)
  assert.match(alt.exe!, /\/cat$/)
  assert.deepEqual(alt.args, ['--b'], 'the fixed arguments of the alternative that was found')
})

test('broken descriptors name the file, the line or the key', () => {
  const bad: Array<[string, RegExp]> = [
    ['cmd openscad\n', /a\.conf:1: expected "key = value"/],
    ["description = no command\n", /a\.conf: cmd: Required/],
    ['cmd = x\ntimeout = soon\n', /a\.conf: timeout: Expected number/],
    ['cmd = x\nargInput = --load=\n', /argInput "--load=" must end in \$fileIn/],
    ['cmd = x\noutput = -o\n', /output must contain \$fileOut/],
    ['cmd = x\nfileOut = ../../etc/passwd\n', /fileOut: \$id or \$id\.EXT/],
    ['cmd = x\ninputs = many\n', /inputs: a count/],
    ["cmd = x\nmissing = ^Can't open\nmissing = ^WARNING: (unclosed\n", /a\.conf:3: missing: Invalid regular expression/],
    ['cmd = x\n\nmissing = ^ERROR|\n', /a\.conf:3: missing: "\^ERROR\|" matches an empty line/],
    ['cmd = x\nprogress = [0-9\n', /a\.conf:2: progress: Invalid regular expression/],
  ]
  for (const [text, msg] of bad) assert.throws(() => parseDescriptor('a', text, 'a.conf'), (e: Error) => e instanceof ServiceConfigError && msg.test(e.message), text)
  assert.throws(() => parseDescriptor('../x', 'cmd = x', 'y.conf'), /must be lower-case/)
})

test('comments, $root and env in descriptors', () => {
  const d = parseDescriptor('j', 'cmd = jscad # the CLI\npath = $root/node_modules/.bin\nenv.NODE_PATH = $root/node_modules\ninputs = 1-3\n', 'j.conf')
  assert.equal(d.alternatives[0].exe, 'jscad')
  assert.match(d.path[0], /\/node_modules\/\.bin$/)
  assert.ok(!d.path[0].includes('$root'))
  assert.match(d.env.NODE_PATH, /node_modules$/)
  assert.deepEqual([d.minInputs, d.maxInputs], [1, 3])
})

test('missing: one expression of all its lines, case-sensitive; the shipped openscad matches what OpenSCAD says of a file it cannot open', () => {
  const d = parseDescriptor('m', "cmd = x\nmissing = ^Can't open '\nmissing = ^no (such|file) here\n", 'm.conf')
  for (const line of ["Can't open 'a.scad'", 'no such here', 'no file here']) assert.ok(d.missing!.test(line), line)
  for (const line of ["can't open 'a.scad'", "ECHO: Can't open 'a'", 'no such']) assert.ok(!d.missing!.test(line), line)
  assert.equal(parseDescriptor('m', 'cmd = x\n', 'm.conf').missing, undefined)
  const scad = shipped().find((s) => s.name === 'openscad')!
  for (const line of [
    "WARNING: Can't open include file 'lib.scad'.",
    "WARNING: Can't open library 'lib.scad'.",
    "WARNING: Can't open library file '/task/lib.scad'",
    "WARNING: Can't open import file '/task/x.stl', import() at line 1",
    "WARNING: Could not read file '/task/x.3mf', import() at line 1",
    "WARNING: Can't open DXF file '/task/x.dxf'.",
    "WARNING: Can't open DXF file 'x.dxf'! in file m.scad, line 1",
    "WARNING: Can't open DAT file '/task/x.dat'.",
    "WARNING: The file '/task/x.dat' couldn't be opened.",
    "ERROR: Can't open file '/task/x.svg', import() at line 1",
  ]) assert.ok(scad.missing!.test(line), line)
  for (const line of [
    "ECHO: \"WARNING: Can't open include file 'x'.\"",
    'DEPRECATED: The dxf_linear_extrude() module will be removed in future releases.',
    'Total rendering time: 0:00:00.000',
    "WARNING: Ignoring unknown variable 'a', in file m.scad, line 1.",
  ]) assert.ok(!scad.missing!.test(line), line)
  for (const s of shipped()) if (s.name !== 'openscad') assert.equal(s.missing, undefined, `${s.name}: fails with a non-zero exit by itself`)
})

test('$task in env: left for each run, then the tool\'s folder', () => {
  const d = parseDescriptor('o', 'cmd = openscad\nenv.OPENSCADPATH = $task/.lib:$root/libs\n', 'o.conf')
  assert.match(d.env.OPENSCADPATH, /^\$task\/\.lib:\/.+\/libs$/)
  assert.match(taskEnv(d.env, '/task').OPENSCADPATH, /^\/task\/\.lib:\/.+\/libs$/)
  assert.deepEqual(taskEnv({ A: '$task', B: 'x' }, '/run/1'), { A: '/run/1', B: 'x' })
  assert.equal(shipped().find((s) => s.name === 'openscad')!.env.OPENSCADPATH, '$task/.lib')
})

test('cache = no keeps a tool out of the result cache; echo and the other shipped tools cache', () => {
  assert.equal(parseDescriptor('r', 'cmd = x\n', 'r.conf').cache, true)
  assert.equal(parseDescriptor('r', 'cmd = x\ncache = no\n', 'r.conf').cache, false)
  assert.equal(parseDescriptor('r', 'cmd = x\ncache = yes\n', 'r.conf').cache, true)
  assert.throws(() => parseDescriptor('r', 'cmd = x\ncache = sometimes\n', 'r.conf'), /r\.conf: cache: Invalid enum value/)
  for (const d of shipped()) assert.equal(d.cache, true, d.name)
})
