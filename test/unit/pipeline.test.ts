import { test } from 'node:test'
import assert from 'node:assert/strict'
import { describePipeline, parsePipeArgv, stagesFor } from '../../src/client/pipe.js'
import { formatPipeline } from '../../src/client/pipelines.js'
import { ClientError } from '../../src/client/errors.js'
import { digestsOf, parsePipeline, pipelineView, PIPELINE_ID, newPipelineId, type Pipeline } from '../../src/pipeline/pipeline.js'
import { TaskError } from '../../src/node/errors.js'
import { fromMeta, fromPeer } from '../../src/pipeline/peers.js'
import { rewriteArgs } from '../../src/client/args.js'
import { localDescriptors, shapeOf } from '../../src/client/shapes.js'

const fails = (fn: () => unknown, re: RegExp, exit = 2) => assert.throws(fn, (e: unknown) => e instanceof ClientError && re.test(e.message) && e.exit === exit, String(re))
const refused = (fn: () => unknown, re: RegExp) => assert.throws(fn, (e: unknown) => e instanceof TaskError && e.kind === 'invalid' && re.test(e.message), String(re))
const A = 'a'.repeat(64)
const B = 'b'.repeat(64)

test('rrcloud pipe: the options before the first service, then stages split at --, each with its own arguments', () => {
  const { opts, stages } = parsePipeArgv(['--s=host:1', '--async', '-o', 'out.gcode', '--with=lib', 'openscad', 'part.scad', '-o', 'part.stl', '--',
    'slic3r', '--load=prusa.ini', '--', 'printrun', '--printer', 'mk3'])
  assert.deepEqual(opts, { server: 'host:1', async: true, output: 'out.gcode', with: ['lib'] })
  assert.deepEqual(stages, [
    { service: 'openscad', args: ['part.scad', '-o', 'part.stl'] },
    { service: 'slic3r', args: ['--load=prusa.ini'] },
    { service: 'printrun', args: ['--printer', 'mk3'] },
  ])
  assert.equal(parsePipeArgv(['-oout.stl', 'openscad', 'x.scad']).opts.output, 'out.stl')
  assert.equal(parsePipeArgv(['--output=o', '--token', 't', '--no-cache', '--json', 'echo', 'a']).opts.token, 't')
  fails(() => parsePipeArgv([]), /no stage given/)
  fails(() => parsePipeArgv(['--async']), /no stage given/)
  fails(() => parsePipeArgv(['openscad', 'x.scad', '--', '--', 'slic3r']), /empty stage/)
  fails(() => parsePipeArgv(['openscad', 'x.scad', '--']), /empty stage/)
  fails(() => parsePipeArgv(['--local', 'openscad', 'x.scad']), /--local/)
  fails(() => parsePipeArgv(['--printer=mk3', 'printrun', 'x.gcode']), /printing stage/)
  fails(() => parsePipeArgv(['-o']), /-o needs a value/)
})

test('stagesFor: a model is rendered, sliced and printed; an STL starts at slicing; G-code prints directly', () => {
  const o = { slice: 'prusa.ini', printer: 'mk3' }
  assert.deepEqual(stagesFor('part.scad', o), [
    { service: 'openscad', args: ['part.scad'] },
    { service: 'slic3r', args: ['--load=prusa.ini'] },
    { service: 'printrun', args: ['--printer', 'mk3'] },
  ])
  assert.deepEqual(stagesFor('d/part.STL', o), [{ service: 'slic3r', args: ['--load=prusa.ini', 'd/part.STL'] }, { service: 'printrun', args: ['--printer', 'mk3'] }])
  assert.deepEqual(stagesFor('part.gcode', o), [{ service: 'printrun', args: ['--printer', 'mk3', 'part.gcode'] }])
  assert.deepEqual(stagesFor('part.gcode'), [{ service: 'printrun', args: ['part.gcode'] }])
  assert.equal(stagesFor('part.jscad', o)[0].service, 'openjscad')
  fails(() => stagesFor('part.scad', { printer: 'mk3' }), /--slice CONFIG/)
  fails(() => stagesFor('part.png', o), /cannot print part\.png/)
})

test('a later stage counts the previous output among its inputs; without an input of its own it derives no output', () => {
  const slic3r = shapeOf(localDescriptors().find((d) => d.name === 'slic3r')!)
  const printrun = shapeOf(localDescriptors().find((d) => d.name === 'printrun')!)
  const here = process.cwd()
  assert.deepEqual(rewriteArgs(printrun, [], here, 1), { inputs: [], explicitOutput: false })
  assert.deepEqual(rewriteArgs(slic3r, ['--load=package.json'], here, 1).inputs, [{ path: `${here}/package.json`, prearg: '--load=' }])
  fails(() => rewriteArgs(printrun, ['package.json'], here, 1), /printrun takes 1 input file\(s\), got 1 and the previous stage's output/)
  fails(() => rewriteArgs(slic3r, [], here), /no input file given/)
})

test('a pipeline request: the first stage has its own inputs; each later one takes the previous output exactly once; paths are checked', () => {
  const ok = parsePipeline({ stages: [
    { service: 'openscad', inputs: [{ sha256: A, path: 'part.scad' }], files: [{ sha256: B, path: 'lib/x.scad' }] },
    { service: 'slic3r', inputs: [{ sha256: B, prearg: '--load=', path: 'p.ini' }, { from: 'previous' }] },
    { service: 'printrun', inputs: [{ from: 'previous', path: 'part.gcode' }], printer: 'mk3' },
  ], cache: false })
  assert.equal(ok.stages[1].files.length, 0)
  assert.deepEqual(digestsOf(ok), [A, B])
  refused(() => parsePipeline({ stages: [{ service: 'openscad', inputs: [{ from: 'previous' }] }] }), /first stage has no previous output/)
  refused(() => parsePipeline({ stages: [{ service: 'openscad', inputs: [{ sha256: A }] }, { service: 'slic3r', inputs: [{ sha256: B }] }] }), /stage 2 \(slic3r\): takes the previous stage's output/)
  refused(() => parsePipeline({ stages: [{ service: 'echo', inputs: [{ sha256: A }] }, { service: 'echo', inputs: [{ from: 'previous' }, { from: 'previous' }] }] }), /exactly once/)
  refused(() => parsePipeline({ stages: [{ service: 'openscad', inputs: [{ sha256: A, path: '../x.scad' }] }] }), /stage 1 \(openscad\): path "\.\.\/x\.scad" has a "\.\." segment/)
  refused(() => parsePipeline({ stages: [{ service: 'printrun', inputs: [{ sha256: A }], files: [{ sha256: B, path: 'x' }], printer: 'mk3' }] }), /a print takes its G-code file alone/)
  refused(() => parsePipeline({ stages: [] }), /stages/)
  refused(() => parsePipeline({ stages: [{ service: 'echo', inputs: [{ sha256: 'nothex' }] }] }), /SHA-256/)
  refused(() => parsePipeline({ stages: [{ service: '../echo', inputs: [{ sha256: A }] }] }), /service/)
  refused(() => parsePipeline({ stages: [{ service: 'echo', inputs: [{ sha256: A }] }], extra: 1 }), /extra/)
  refused(() => parsePipeline({ stages: Array.from({ length: 17 }, () => ({ service: 'echo', inputs: [{ sha256: A }] })) }), /stages/)
})

test('a pipeline as shown: no token, the notifier only to the trusted, each stage with its node, task, state and percent', () => {
  assert.match(newPipelineId(), PIPELINE_ID)
  const p: Pipeline = {
    id: 'p1700000000-123456', status: 'running', client: '10.0.0.9', ctime: 1700000000, stage: 1, token: 's3cret', notifier: 'http://x/?k=secret',
    stages: [
      { service: 'openscad', inputs: [{ sha256: A }], files: [], state: 'complete', node: { id: 'n1', name: 'alpha', url: 'http://10.0.0.2:4468' }, task: '1700000000-000001', out: { sha256: B, size: 10, name: '1700000000-000001.stl' }, tried: ['n1'] },
      { service: 'printrun', inputs: [{ from: 'previous' }], files: [], printer: 'mk3', state: 'busy', node: { id: 'n2', name: 'pi', url: 'http://10.0.0.3:4468' }, task: '1700000000-000002', percent: 42.5, tried: ['n3', 'n2'] },
    ],
  }
  const v = pipelineView(p) as any
  assert.equal(v.token, undefined)
  assert.equal(v.notifier, undefined)
  assert.equal((pipelineView(p, { notifier: true }) as any).notifier, p.notifier)
  assert.deepEqual(v.stages[1], { n: 2, service: 'printrun', state: 'busy', node: 'pi', nodeId: 'n2', nodeUrl: 'http://10.0.0.3:4468', task: '1700000000-000002', printer: 'mk3', percent: 42.5, attempts: 2 })
  assert.equal(v.stages[0].outSha256, B)
  assert.equal(describePipeline(v), 'stage 2/2 printrun on pi: busy 42%')
  const text = formatPipeline(v)
  assert.match(text, /^status: running$/m)
  assert.match(text, /^stage: 2\/2$/m)
  assert.match(text, /^2 +printrun +busy +pi +1700000000-000002 +42%$/m)
})

test('the nodes a driver sees: mDNS peers at their IPv4 address, named nodes from their meta', () => {
  const record = { version: '0.1.0', id: 'n1', name: 'alpha', services: ['openscad'], load: 0.5, cores: 2, slots: 2, free: 1, queue: 0, printers: [], tokenRequired: false }
  assert.equal(fromPeer({ addresses: ['fe80::1', '10.0.0.2'], port: 4468, record })!.url, 'http://10.0.0.2:4468')
  assert.equal(fromPeer({ addresses: ['fd00::2'], port: 4468, record })!.url, 'http://[fd00::2]:4468')
  assert.equal(fromPeer({ addresses: [], port: 4468, record }), undefined)
  const m = fromMeta('http://pi:4468', { id: 'n2', serverName: 'pi', services: 'echo,printrun', cpuLoad: 1, cores: 4, slots: 1, free: 1, queue: 0, printers: [{ name: 'mk3', port: '/dev/ttyUSB0', state: 'idle' }] })
  assert.deepEqual([m.id, m.name, m.services, m.load, m.printers?.[0].name], ['n2', 'pi', ['echo', 'printrun'], 0.25, 'mk3'])
})
