import { test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeRecord, encodeRecord, truncateBytes, txtSize, TXT_MAX_BYTES, type NodeRecord } from '../../src/discovery/record.js'

const base: NodeRecord = {
  version: '0.1.0',
  id: '3f2a9c1e-77b0-4e0e-9d61-0c5a2f1b8e11',
  name: 'box',
  services: ['echo', 'openscad', 'slic3r'],
  load: 0.254,
  cores: 8,
  slots: 4,
  free: 3,
  queue: 2,
  printers: [{ name: 'mk3', port: '/dev/ttyACM0', state: 'idle' }],
  tokenRequired: true,
}

const strings = (txt: Buffer[]): string[] => txt.map(String)

test('a record survives encode/decode, with the load rounded to 2 decimals', () => {
  const txt = encodeRecord(base)
  assert.deepEqual(decodeRecord(txt), { ...base, load: 0.25 })
  assert.equal(strings(txt)[0], 'txtvers=1', 'txtvers comes first (RFC 6763 §6.7)')
  assert.ok(strings(txt).includes('p0=mk3|idle|ttyACM0'), 'printer ports leave out /dev/')
  assert.ok(strings(txt).includes('tok=1'))
  assert.ok(txtSize(txt) < 250, `a typical record is small (${txtSize(txt)} bytes)`)
})

test('decodes what it encodes from plain strings too, and keeps non-/dev ports as they are', () => {
  const r = { ...base, printers: [{ name: 'a|b,c%d', port: '/srv/pty/7', state: 'printing' }], tokenRequired: false }
  const back = decodeRecord(strings(encodeRecord(r)))
  assert.deepEqual(back?.printers, r.printers)
  assert.equal(back?.tokenRequired, false)
})

test('many services are cut to one 255-byte string and marked truncated', () => {
  const services = Array.from({ length: 80 }, (_, i) => `service-number-${i}`)
  const txt = encodeRecord({ ...base, services })
  for (const s of txt) assert.ok(s.length <= 255, `string of ${s.length} bytes`)
  const back = decodeRecord(txt)!
  assert.ok(back.services.length > 5 && back.services.length < 80)
  assert.deepEqual(back.services, services.slice(0, back.services.length), 'kept in order, dropped from the end')
  assert.deepEqual(back.truncated, ['services'])
})

test('many printers with long by-id paths stay under the record budget and are marked truncated', () => {
  const printers = Array.from({ length: 30 }, (_, i) => ({
    name: `printer-${i}`,
    port: `/dev/serial/by-id/usb-Prusa_Research__prusa3d.com__Original_Prusa_i3_MK3_CZPX${1000 + i}X004XK-if00`,
    state: 'printing',
  }))
  const txt = encodeRecord({ ...base, printers })
  assert.ok(txtSize(txt) <= TXT_MAX_BYTES, `${txtSize(txt)} bytes`)
  for (const s of txt) assert.ok(s.length <= 255)
  const back = decodeRecord(txt)!
  assert.ok(back.printers.length >= 5 && back.printers.length < 30, `${back.printers.length} printers kept`)
  assert.deepEqual(back.printers, printers.slice(0, back.printers.length))
  assert.deepEqual(back.truncated, ['printers'])
  assert.deepEqual(back.services, base.services, 'services are never dropped for printers')
})

test('long names are cut on a character boundary', () => {
  assert.equal(truncateBytes('ééé', 5), 'éé')
  assert.equal(truncateBytes('abc', 3), 'abc')
  const back = decodeRecord(encodeRecord({ ...base, name: 'ü'.repeat(100) }))!
  assert.equal(back.name, 'ü'.repeat(31))
})

test('invalid node ids are refused when encoding', () => {
  assert.throws(() => encodeRecord({ ...base, id: '' }), /invalid node id/)
  assert.throws(() => encodeRecord({ ...base, id: 'a=b' }), /invalid node id/)
  assert.throws(() => encodeRecord({ ...base, id: 'x'.repeat(65) }), /invalid node id/)
})

test('decoding rejects other versions and incomplete records, takes the first of a repeated key', () => {
  const ok = ['txtvers=1', 'v=1', 'id=n1', 'load=0.5', 'cores=2', 'slots=1', 'free=1', 'queue=0']
  assert.equal(decodeRecord(ok)?.id, 'n1')
  assert.equal(decodeRecord(ok.slice(1)), undefined, 'no txtvers')
  assert.equal(decodeRecord(['txtvers=2', ...ok.slice(1)]), undefined, 'unknown version')
  assert.equal(decodeRecord(ok.filter((s) => !s.startsWith('id='))), undefined, 'no id')
  assert.equal(decodeRecord(ok.map((s) => s === 'load=0.5' ? 'load=high' : s)), undefined, 'bad number')
  assert.equal(decodeRecord(ok.filter((s) => !s.startsWith('queue'))), undefined, 'missing number')
  assert.equal(decodeRecord([...ok, 'id=n2'])?.id, 'n1')
  const r = decodeRecord(['TXTVERS=1', 'V=1', 'ID=n1', 'LOAD=0.5', 'Cores=2', 'slots=1', 'free=1', 'queue=0', 'future=x'])
  assert.equal(r?.load, 0.5, 'keys are case-insensitive and unknown ones ignored')
  assert.deepEqual(r?.services, [])
  assert.deepEqual(r?.printers, [])
  assert.equal(r?.tokenRequired, false)
})

test('negative or non-finite numbers are sent as 0', () => {
  const back = decodeRecord(encodeRecord({ ...base, load: Number.NaN, queue: -3 }))!
  assert.equal(back.load, 0)
  assert.equal(back.queue, 0)
})
