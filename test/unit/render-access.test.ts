import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DEFAULT_ALLOW, isAllowed, parseCidrs, tokenMatches } from '../../src/node/access.js'
import { taskView, toHtml, toText } from '../../src/node/render.js'
import { formatUptime } from '../../src/node/node.js'
import { newTaskId, TASK_ID } from '../../src/node/task.js'

test('the default allow list is the LAN: loopback, private, link-local, ULA', () => {
  const lan = parseCidrs(DEFAULT_ALLOW)
  for (const ip of ['127.0.0.1', '::1', '10.1.2.3', '172.20.0.1', '192.168.1.9', '169.254.3.4', 'fe80::1', 'fd12::3', '::ffff:192.168.0.7']) {
    assert.ok(isAllowed(lan, ip), ip)
  }
  for (const ip of ['8.8.8.8', '172.32.0.1', '2001:db8::1', '::ffff:1.1.1.1', '', 'garbage']) assert.ok(!isAllowed(lan, ip), ip)
  assert.throws(() => parseCidrs(['10.0.0.0/33']), /bad prefix/)
  assert.throws(() => parseCidrs(['lan']), /not an address/)
  assert.ok(isAllowed(parseCidrs(['192.168.5.4']), '192.168.5.4'))
})

test('tokens compare exactly', () => {
  assert.ok(tokenMatches('abc', 'abc'))
  assert.ok(!tokenMatches('abc', 'abd'))
  assert.ok(!tokenMatches('abc', 'ab'))
  assert.ok(!tokenMatches('abc', undefined))
})

test('tasks render as the seed did: sorted key: value lines, in as a comma list', () => {
  const v = taskView({ id: '1-000001', service: 'slic3r', status: 'complete', client: '10.0.0.2', server: 'pi', cmd: 'slic3r x', ctime: 1.5, in: [{ path: 'a.ini', prearg: '--load=' }, { path: 'b.stl' }], out: 'tasks/out/1-000001.gcode' })
  assert.equal(v.in, '--load=a.ini,b.stl')
  assert.equal(toText(v), 'client: 10.0.0.2\ncmd: slic3r x\nctime: 1.5\nid: 1-000001\nin: --load=a.ini,b.stl\nout: tasks/out/1-000001.gcode\nserver: pi\nservice: slic3r\nstatus: complete\n')
  assert.equal(toText([{ a: 1 }, { b: 2 }]), 'a: 1\n\nb: 2\n')
  assert.equal(toText({ unavailable: { povray: 'not found' } }), 'unavailable: povray (not found)\n')
  const html = toHtml('x', [{ id: '<script>' }])
  assert.ok(!html.includes('<script>'), 'HTML is escaped')
})

test('uptime and ids look like the seed\'s', () => {
  assert.equal(formatUptime(6 * 3600 + 52), '0d 06h 00m 52s')
  assert.equal(formatUptime(2 * 86400 + 61), '2d 00h 01m 01s')
  assert.match(newTaskId(1361982308837), /^1361982308-\d{6}$/)
  assert.ok(TASK_ID.test(newTaskId()))
})

test('lists of records in text: one item each, fields as k=v', () => {
  assert.equal(toText({ printers: [{ name: 'mk3', port: '/dev/ttyUSB0', state: 'idle' }, { name: 'e3', port: '/dev/ttyACM0', state: 'printing' }] }),
    'printers: name=mk3 port=/dev/ttyUSB0 state=idle, name=e3 port=/dev/ttyACM0 state=printing\n')
  assert.equal(toText({ printers: [] }), 'printers: \n')
})
