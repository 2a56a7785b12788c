import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chmodSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cacheable, cacheKey, canonical } from '../../src/node/cache.js'
import { parseDescriptor, resolveService } from '../../src/executors/services.js'

test('canonical JSON: keys sorted at every level, undefined left out', () => {
  assert.equal(canonical({ b: 1, a: { d: [1, { z: 1, y: undefined, x: 2 }], c: null } }), '{"a":{"c":null,"d":[1,{"x":2,"z":1}]},"b":1}')
  assert.equal(canonical({ re: /^x$/, n: Infinity }), '{"n":"Infinity","re":"/^x$/"}')
})

test('the key of a result changes with the tool, the files, their names and the descriptor, and not with the task id', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rrcloud-key-'))
  try {
    const exe = join(dir, 'tool')
    writeFileSync(exe, '#!/bin/sh\n')
    chmodSync(exe, 0o755)
    const conf = `cmd = ${exe}\nfileIn = scad\nfileOut = $id.stl\noutput = -o$fileOut\n`
    const s = resolveService(parseDescriptor('t', conf, 't.conf'), '')
    assert.ok(cacheable(s))
    const a = 'a'.repeat(64)
    const b = 'b'.repeat(64)
    const key = cacheKey(s, [{ name: 'main.scad', sha256: a }], [{ name: 'lib/x.scad', sha256: b }, { name: 'lib/y.scad', sha256: a }])
    assert.match(key, /^[0-9a-f]{64}$/)
    assert.equal(cacheKey(s, [{ name: 'main.scad', sha256: a }], [{ name: 'lib/y.scad', sha256: a }, { name: 'lib/x.scad', sha256: b }]), key, 'files in any order')
    const others = [
      cacheKey(s, [{ name: 'main.scad', sha256: b }], [{ name: 'lib/x.scad', sha256: b }, { name: 'lib/y.scad', sha256: a }]),
      cacheKey(s, [{ name: 'other.scad', sha256: a }], [{ name: 'lib/x.scad', sha256: b }, { name: 'lib/y.scad', sha256: a }]),
      cacheKey(s, [{ name: 'main.scad', sha256: a }], [{ name: 'lib/x.scad', sha256: a }, { name: 'lib/y.scad', sha256: b }]),
      cacheKey(s, [{ name: 'main.scad', sha256: a }], [{ name: 'lib/x.scad', sha256: b }]),
      cacheKey(resolveService(parseDescriptor('t', conf + 'env.X = 1\n', 't.conf'), ''), [{ name: 'main.scad', sha256: a }], [{ name: 'lib/x.scad', sha256: b }, { name: 'lib/y.scad', sha256: a }]),
    ]
    assert.equal(new Set([key, ...others]).size, others.length + 1)
    // an upgrade of the tool: another size or time
    utimesSync(exe, new Date(), new Date(Date.now() + 5000))
    assert.notEqual(cacheKey(s, [{ name: 'main.scad', sha256: a }], [{ name: 'lib/x.scad', sha256: b }, { name: 'lib/y.scad', sha256: a }]), key)
    assert.equal(cacheable(resolveService(parseDescriptor('t', conf + 'cache = no\n', 't.conf'), '')), false)
    assert.equal(cacheable({ ...resolveService(parseDescriptor('p', 'kind = printer\nfileIn = gcode\n', 'p.conf'), ''), available: true }), false, 'prints never come from a cache')
  } finally { rmSync(dir, { recursive: true, force: true }) }
})
