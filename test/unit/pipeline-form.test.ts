import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadDescriptors } from '../../src/executors/services.js'
import { HttpError, TaskError } from '../../src/node/errors.js'
import { pipelineFromForm } from '../../src/node/pipeline-form.js'
import type { UploadedFile } from '../../src/node/uploads.js'
import { parsePipeline } from '../../src/pipeline/pipeline.js'

const services = loadDescriptors([join(fileURLToPath(new URL('../..', import.meta.url)), 'services')])
let n = 0
const file = (field: string, originalName: string): UploadedFile =>
  ({ field, originalName, path: `/tmp/x${n}`, size: 10 + n, sha256: (n++).toString(16).padStart(64, '0') })
const form = (fields: Record<string, string>, files: UploadedFile[] = []) => pipelineFromForm({ fields, files }, services)
const names = (field: string, fn: () => unknown) => assert.throws(fn, (e: unknown) => e instanceof HttpError && e.status === 400 && e.extra.field === field && e.message.startsWith(`${field}: `), field)

test('a form becomes the JSON request: configs first with the service\'s prearg, the previous output named after the model, files by path', () => {
  const scad = file('stage1.in', 'part.scad')
  const lib = file('stage1.file', 'lib/gear.scad')
  const ini = file('stage2.config', 'prusa.ini')
  const r = form({ stage1: 'openscad', stage2: 'slic3r', group: 'mk3', copies: '3', cache: 'false' }, [scad, lib, ini])
  assert.deepEqual(r, {
    stages: [
      { service: 'openscad', inputs: [{ sha256: scad.sha256, path: 'part.scad', size: scad.size }], files: [{ sha256: lib.sha256, path: 'lib/gear.scad', size: lib.size }] },
      { service: 'slic3r', inputs: [{ sha256: ini.sha256, path: 'prusa.ini', size: ini.size, prearg: '--load=' }, { from: 'previous', path: 'part.stl' }], files: [] },
    ],
    queue: { group: 'mk3', copies: 3 },
    cache: false,
  })
  // the JSON API takes it as it is
  assert.deepEqual(parsePipeline(r).queue, { group: 'mk3', copies: 3 })
  // a file of the stage with the previous output's name: the output takes another
  const clash = form({ stage1: 'openscad', stage2: 'slic3r' }, [file('stage1.in', 'C:\\models\\part.scad'), file('stage2.in', 'part.stl')])
  assert.deepEqual(clash.stages[1].inputs.map((i) => i.path), ['in-part.stl', 'part.stl'])
  assert.equal(clash.stages[0].inputs[0].path, 'part.scad', 'a path a browser sends is cut to its name')
  // a print stage takes its printer
  const print = form({ stage1: 'slic3r', stage2: 'printrun', 'stage2.printer': 'mk3a' }, [file('stage1.in', 'a.stl')])
  assert.deepEqual(print.stages[1], { service: 'printrun', inputs: [{ from: 'previous', path: 'a.gcode' }], files: [], printer: 'mk3a' })
})

test('a form that is wrong names its field', () => {
  const scad = () => file('stage1.in', 'part.scad')
  names('stage1', () => form({}))
  names('stage1.model', () => form({ stage1: 'openscad' }, [file('stage1.model', 'x.scad')]))
  names('stage1.in', () => form({ stage1: 'openscad', 'stage1.in': 'cube([1,1,1]);' }))
  names('stage1.in', () => form({ stage1: 'openscad' }))
  names('stage2', () => form({ stage1: 'openscad', stage3: 'slic3r' }, [scad()]))
  names('stage17', () => form({ stage1: 'openscad', stage17: 'slic3r' }, [scad()]))
  names('stage2', () => form({ stage1: 'openscad', stage2: 'nosuch' }, [scad()]))
  names('stage3', () => form({ stage1: 'slic3r', stage2: 'printrun', stage3: 'slic3r' }, [file('stage1.in', 'a.stl')]))
  names('stage2.printer', () => form({ stage1: 'openscad', stage2: 'slic3r', 'stage2.printer': 'mk3' }, [scad()]))
  names('stage1.prearg', () => form({ stage1: 'openscad', 'stage1.prearg': '--load=' }, [scad(), file('stage1.config', 'a.ini')]))
  names('copies', () => form({ stage1: 'openscad', stage2: 'slic3r', group: 'mk3', copies: '1.5' }, [scad()]))
  names('copies', () => form({ stage1: 'openscad', stage2: 'slic3r', group: 'mk3', copies: '1001' }, [scad()]))
  names('printer', () => form({ stage1: 'openscad', stage2: 'slic3r', group: 'mk3', printer: 'mk3a' }, [scad()]))
  names('printer', () => form({ stage1: 'slic3r', stage2: 'printrun', printer: 'mk3a' }, [file('stage1.in', 'a.stl')]))
  names('group', () => form({ stage1: 'openscad', group: 'mk3' }, [scad()]))
})

test('the JSON API checks a queue as the form does', () => {
  const stage = { service: 'slic3r', inputs: [{ sha256: 'a'.repeat(64), path: 'a.stl' }] }
  const refused = (json: unknown, re: RegExp) => assert.throws(() => parsePipeline(json), (e: unknown) => e instanceof TaskError && e.kind === 'invalid' && re.test(e.message), String(re))
  refused({ stages: [stage], queue: { copies: 2 } }, /queue: say where to print/)
  refused({ stages: [stage], queue: { group: 'a', printer: 'b' } }, /queue: say where to print/)
  refused({ stages: [stage], queue: { group: 'mk3', copies: 0 } }, /copies/)
  refused({ stages: [stage, { service: 'printrun', inputs: [{ from: 'previous' }] }], queue: { group: 'mk3' } }, /the last stage \(printrun\) prints/)
  assert.deepEqual(parsePipeline({ stages: [stage], queue: { printer: 'mk3a' } }).queue, { printer: 'mk3a', copies: 1 })
})
