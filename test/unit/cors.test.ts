import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DEFAULT_ALLOW, parseCidrs } from '../../src/node/access.js'
import { createOriginPolicy } from '../../src/node/cors.js'

const lan = createOriginPolicy({ allow: parseCidrs(DEFAULT_ALLOW), names: ['pi-mk3'] })

test('default: pages from addresses in --allow, localhost and .local names; the node under its own name', () => {
  const cases: Array<[string, string, boolean]> = [
    ['http://192.168.1.5:8080', 'node:4468', true],
    ['http://10.0.0.1', 'node:4468', true],
    ['http://[fe80::1]', 'node:4468', true],
    ['http://[::1]:3000', 'node:4468', true],
    ['http://localhost:5173', 'node:4468', true],
    ['http://app.localhost', 'node:4468', true],
    ['http://printer.local', 'node:4468', true],
    ['https://Printer.Local.:8443', 'node:4468', true],
    ['http://pi-mk3:4468', 'pi-mk3:4468', true],
    ['http://pi-mk3:4468', 'other:4468', false],
    ['http://pi-mk3:8080', 'pi-mk3:4468', false],
    ['http://evil.example:4468', 'evil.example:4468', false],
    ['http://evil.example', 'node:4468', false],
    ['http://8.8.8.8', 'node:4468', false],
    ['http://local', 'node:4468', false],
    ['http://printer.local.evil.example', 'node:4468', false],
    ['null', 'node:4468', false],
    ['file://', 'node:4468', false],
    ['not a url', 'node:4468', false],
  ]
  for (const [origin, host, want] of cases) assert.equal(lan.allows(origin, host), want, `${origin} (Host ${host})`)
  const narrow = createOriginPolicy({ allow: parseCidrs(['192.168.7.0/24']) })
  assert.ok(narrow.allows('http://192.168.7.9', 'x'))
  assert.ok(!narrow.allows('http://192.168.1.5', 'x'), 'an address outside --allow is not the LAN')
})

test('--cors adds origins and host names; * any page but the opaque one; null only by name', () => {
  const p = createOriginPolicy({ allow: parseCidrs(DEFAULT_ALLOW), cors: ['https://dash.example.org', 'octopi', '203.0.113.9', 'null'] })
  assert.ok(p.allows('https://dash.example.org', 'x'))
  assert.ok(!p.allows('http://dash.example.org', 'x'))
  assert.ok(p.allows('http://octopi:5000', 'x'))
  assert.ok(p.allows('http://203.0.113.9', 'x'))
  assert.ok(p.allows('null', 'x'))
  const any = createOriginPolicy({ allow: parseCidrs(DEFAULT_ALLOW), cors: ['*'] })
  assert.ok(any.allows('https://anything.example', 'x'))
  assert.ok(!any.allows('null', 'x'))
  for (const bad of ['http://x/path', 'ftp//x', 'a b']) assert.throws(() => createOriginPolicy({ allow: parseCidrs(DEFAULT_ALLOW), cors: [bad] }), /--cors/, bad)
})
