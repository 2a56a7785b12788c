import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parsePrinterSpec } from '../../src/node/node.js'
import { decodeRecord, encodeRecord, txtSize, TXT_MAX_BYTES, type NodeRecord } from '../../src/discovery/record.js'
import { openFarmDb } from '../../src/farm/db.js'
import { createFarmPrinters, type RunnerView } from '../../src/farm/printers.js'
import { octoPrintServices } from '../../src/farm/advertise.js'
import { storedName } from '../../src/node/octoprint.js'
import { TaskError } from '../../src/node/errors.js'
import type { Printer, PrinterState } from '../../src/executors/printer/printer.js'
import type { Task } from '../../src/node/task.js'
import { rank, type PeerInfo } from '../../src/scheduler/rank.js'

test('--printer takes groups (repeatable) and autoclear beside park= and ahead=', () => {
  assert.deepEqual(parsePrinterSpec('mk3a=/dev/ttyUSB0@115200,group=mk3,group=petg'),
    { name: 'mk3a', path: '/dev/ttyUSB0', baudRate: 115200, groups: ['mk3', 'petg'] })
  assert.deepEqual(parsePrinterSpec('belt=/dev/ttyACM0,autoclear,group=belt,group=belt'),
    { name: 'belt', path: '/dev/ttyACM0', baudRate: undefined, autoclear: true, groups: ['belt'] })
  assert.deepEqual(parsePrinterSpec('x=/dev/ttyUSB1,park=G91;G1 Z10,group=pla,ahead=1'),
    { name: 'x', path: '/dev/ttyUSB1', baudRate: undefined, park: ['G91', 'G1 Z10'], groups: ['pla'], ahead: 1 })
  assert.throws(() => parsePrinterSpec('x=/dev/ttyUSB1,group='), /unknown option "group="/)
  assert.throws(() => parsePrinterSpec('x=/dev/ttyUSB1,group=a b'), /group=NAME/)
  assert.throws(() => parsePrinterSpec('x=/dev/ttyUSB1,autoclear=yes'), /autoclear/)
})

const record: NodeRecord = {
  version: '0.1.0', id: '3f2a9c1e', name: 'box', services: ['printrun'], load: 0, cores: 4, slots: 4, free: 4, queue: 0,
  printers: [{ name: 'mk3a', port: '/dev/ttyUSB0', state: 'finished', groups: ['mk3', 'petg'] }, { name: 'ender', port: '/dev/ttyUSB1', state: 'idle' }],
  tokenRequired: false,
}

test('the TXT record carries each printer\'s groups and farm state; records without groups decode as before', () => {
  const txt = encodeRecord(record)
  assert.ok(txt.map(String).includes('p0=mk3a|finished|ttyUSB0|mk3,petg'), txt.map(String).join(' '))
  assert.ok(txt.map(String).includes('p1=ender|idle|ttyUSB1'))
  assert.deepEqual(decodeRecord(txt)!.printers, record.printers)
  // an older node's record: three fields
  assert.deepEqual(decodeRecord(['txtvers=1', 'v=0.1.0', 'id=x', 'load=0', 'cores=1', 'slots=1', 'free=1', 'queue=0', 'p0=a|idle|ttyS0'])!.printers,
    [{ name: 'a', state: 'idle', port: '/dev/ttyS0' }])
})

test('eight printers in three groups each fit the TXT budget', () => {
  const printers = Array.from({ length: 8 }, (_, i) => ({ name: `mk3-${i}`, port: `/dev/ttyUSB${i}`, state: 'disconnected', groups: ['mk3', 'petg-0.4', 'workshop-left'] }))
  const txt = encodeRecord({ ...record, services: ['echo', 'openscad', 'openjscad', 'slic3r', 'povray', 'printrun'], printers })
  assert.ok(txtSize(txt) <= TXT_MAX_BYTES)
  assert.deepEqual(decodeRecord(txt)!.printers, printers)
  assert.equal(decodeRecord(txt)!.truncated, undefined)
})

test('_octoprint._tcp services: one per printer and one per group, with the API path in TXT', () => {
  const s = octoPrintServices('pi.one', [{ name: 'mk3a', groups: ['mk3'] }, { name: 'mk3b', groups: ['mk3', 'petg'] }, { name: 'solo' }])
  assert.deepEqual(s.map((x) => x.name), ['mk3a on pi-one', 'mk3b on pi-one', 'solo on pi-one', 'mk3 group on pi-one', 'petg group on pi-one'])
  assert.ok(s.every((x) => x.type === '_octoprint._tcp.local'))
  assert.deepEqual(s[3].txt, ['txtvers=1', 'path=/octoprint/group/mk3', 'version=1.5.0', 'api=0.1', 'model=mk3', 'vendor=rrcloud'])
  assert.ok(s[2].txt.includes('path=/octoprint/printer/solo'))
})

test('uploaded file names are kept as plain G-code names', () => {
  assert.equal(storedName('part.gcode'), 'part.gcode')
  assert.equal(storedName('../../etc/passwd'), 'passwd.gcode')
  assert.equal(storedName('sub/dir\\Big part (2).GCO'), 'Big_part_2_.GCO')
  assert.equal(storedName('.hidden'), 'hidden.gcode')
  assert.equal(storedName(''), 'upload.gcode')
})

// --- the state machine, with a printer and a runner that are only what the farm sees of them ---

class FakePrinter extends EventEmitter {
  state: PrinterState = 'idle'
  temperatures = {}
  lastError: string | undefined
  constructor (readonly name: string, readonly path = `/dev/${name}`) { super() }
  set (s: PrinterState) { this.state = s; this.emit('state', s) }
}

function fakeRunner () {
  const tasks = new Map<string, Task>()
  const events = new EventEmitter()
  const runner: RunnerView & { emit (t: Partial<Task> & { id: string }): void } = {
    events,
    list: () => [...tasks.values()],
    get: (id) => { const t = tasks.get(id); if (!t) throw new TaskError('unknown', id); return t },
    emit (patch) {
      const t = { service: 'printrun', client: '', server: '', cmd: '', ctime: 0, in: [{ path: 'tasks/in/x-0.gcode' }], status: 'queued', ...tasks.get(patch.id), ...patch } as Task
      tasks.set(t.id, t)
      events.emit('task', t)
    },
  }
  return runner
}

function setup (dir: string, o: { autoclear?: boolean, claimMs?: number } = {}) {
  const db = openFarmDb(dir)
  const p = new FakePrinter('mk3a')
  const runner = fakeRunner()
  const lines: string[] = []
  const farm = createFarmPrinters({ printers: [{ name: 'mk3a', groups: ['mk3'], autoclear: o.autoclear }], claimMs: o.claimMs },
    { db, printers: new Map([['mk3a', p as unknown as Printer]]), runner, log: (l) => lines.push(l) })
  const task = (id: string): Task => ({ id, printer: 'mk3a', service: 'printrun', status: 'queued', client: '', server: '', cmd: '', ctime: 0, in: [{ path: `tasks/in/${id}-0.gcode` }] })
  return { db, p, runner, farm, lines, task, close: () => { farm.close(); db.close() } }
}

test('a claimed printer prints its job, is finished after it and takes nothing until cleared', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rrcloud-farm-'))
  try {
    const { farm, runner, task, close } = setup(dir)
    assert.equal(farm.state('mk3a'), 'idle')
    assert.ok(farm.ready('mk3a'))
    const c = farm.claim('mk3a', { file: 'part.gcode', job: 'j1-000001', copy: 1, owner: 'pi1' })
    assert.equal(farm.state('mk3a'), 'printing', 'a claimed printer is taken')
    assert.throws(() => farm.claim('mk3a'), (e: TaskError) => e.kind === 'conflict' && /claimed for another job/.test(e.message))
    // a print by name waits for no claim but may not slip in before the claimed job
    assert.throws(() => farm.admit(task('1-000001')), /claimed for job j1-000001/)
    assert.throws(() => farm.admit(task('1-000002'), 'not-the-claim'), /holds no claim/)
    farm.admit(task('1-000003'), c.claim)
    assert.deepEqual(farm.lookup('mk3a', c.claim), { claim: c.claim, printer: 'mk3a', pending: false, task: '1-000003' })
    assert.equal(farm.release('mk3a', c.claim), false, 'a used claim is not given back')
    runner.emit({ id: '1-000003', printer: 'mk3a', status: 'busy', percent: 40 })
    assert.equal(farm.get('mk3a')!.job!.file, 'part.gcode')
    assert.equal(farm.get('mk3a')!.progress!.percent, 40)
    runner.emit({ id: '1-000003', printer: 'mk3a', status: 'complete' })
    assert.equal(farm.state('mk3a'), 'finished')
    assert.throws(() => farm.claim('mk3a'), /finished: its bed holds the last print/)
    assert.equal(farm.clear('mk3a').state, 'idle')
    assert.ok(farm.ready('mk3a'))
    close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('a failed print puts the printer in error until cleared; a halted firmware too; autoclear after a complete print', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rrcloud-farm-'))
  try {
    const { farm, runner, p, task, close } = setup(dir, { autoclear: true })
    farm.admit(task('1-000010'))
    assert.equal(farm.ready('mk3a'), false, 'a print waiting for the printer keeps claims away')
    runner.emit({ id: '1-000010', printer: 'mk3a', status: 'busy' })
    runner.emit({ id: '1-000010', printer: 'mk3a', status: 'complete' })
    assert.equal(farm.state('mk3a'), 'idle', 'autoclear: ready again at once')
    runner.emit({ id: '1-000011', printer: 'mk3a', status: 'busy' })
    assert.throws(() => farm.clear('mk3a'), /printing/)
    runner.emit({ id: '1-000011', printer: 'mk3a', status: 'failed', error: 'printer mk3a: firmware error' })
    assert.equal(farm.state('mk3a'), 'error')
    assert.equal(farm.get('mk3a')!.error, 'printer mk3a: firmware error')
    assert.throws(() => farm.claim('mk3a'), /in error \(printer mk3a: firmware error\)/)
    farm.clear('mk3a')
    p.lastError = 'emergency stop (M112)'
    p.set('halted')
    assert.equal(farm.state('mk3a'), 'error')
    p.set('idle') // the board was reset: still nobody has looked at the bed
    assert.equal(farm.state('mk3a'), 'error')
    farm.clear('mk3a')
    p.set('disconnected')
    assert.equal(farm.state('mk3a'), 'disconnected')
    assert.throws(() => farm.claim('mk3a'), /not ready: disconnected/)
    close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('the bed survives a restart: finished stays finished, a print cut off by the stop is an error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rrcloud-farm-'))
  try {
    const a = setup(dir)
    a.runner.emit({ id: '1-000020', printer: 'mk3a', status: 'busy' })
    a.runner.emit({ id: '1-000020', printer: 'mk3a', status: 'complete' })
    a.close()
    const b = setup(dir)
    assert.equal(b.farm.state('mk3a'), 'finished')
    assert.ok(b.lines.some((l) => /finished: waits for `rrcloud clear mk3a`/.test(l)), b.lines.join('\n'))
    b.farm.clear('mk3a')
    b.runner.emit({ id: '1-000021', printer: 'mk3a', status: 'busy' })
    b.close() // as a crash: the print never ended
    const c = setup(dir)
    assert.equal(c.farm.state('mk3a'), 'error')
    assert.match(c.farm.get('mk3a')!.error!, /node stopped during the print/)
    c.close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('a claim not used in time expires; one given back frees the printer at once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rrcloud-farm-'))
  try {
    const { farm, close } = setup(dir, { claimMs: 100 })
    const a = farm.claim('mk3a')
    assert.equal(farm.lookup('mk3a', a.claim)!.pending, true)
    assert.equal(farm.release('mk3a', a.claim), true)
    assert.equal(farm.lookup('mk3a', a.claim), undefined)
    const b = farm.claim('mk3a')
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.equal(farm.lookup('mk3a', b.claim), undefined)
    assert.ok(farm.ready('mk3a'))
    assert.throws(() => farm.claim('ender'), (e: TaskError) => e.kind === 'unknown')
    close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('the scheduler: a farm job goes only to nodes with a printer of its group, least loaded first', () => {
  const node = (id: string, load: number, printers: PeerInfo['printers']): PeerInfo =>
    ({ id, name: id, url: `http://${id}`, services: ['printrun'], load, slots: 1, free: 1, queue: 0, printers })
  const peers = [
    node('a', 0.9, [{ name: 'mk3a', port: '/dev/ttyUSB0', groups: ['mk3'] }]),
    node('b', 0.1, [{ name: 'ender', port: '/dev/ttyUSB0', groups: ['pla'] }]),
    node('c', 0.2, [{ name: 'mk3b', port: '/dev/ttyUSB0', groups: ['petg', 'mk3'] }]),
    node('d', 0, [{ name: 'old', port: '/dev/ttyUSB0' }]),
  ]
  assert.deepEqual(rank('printrun', { group: 'mk3' }, peers).map((c) => c.peer.id), ['c', 'a'])
  assert.deepEqual(rank('printrun', { group: 'abs' }, peers), [])
  assert.deepEqual(rank('printrun', {}, peers).map((c) => c.peer.id), ['d', 'b', 'c', 'a'])
})
