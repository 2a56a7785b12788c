// What a newcomer reads in src/client: peers --watch as a function that stops when asked,
// one base for cancel/pause/resume, a form without dead members, "no node found" that says where.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLanSource, NoNodeError, type LanPeer } from '../../src/client/lan.js'
import { followPeers, peerChanges } from '../../src/client/watch.js'
import { StreamingForm } from '../../src/client/form.js'
import { TaskChangeCommand } from '../../src/client/command.js'
import Cancel from '../../src/commands/cancel.js'
import Pause from '../../src/commands/pause.js'
import Resume from '../../src/commands/resume.js'

const peer = (id: string, free = 1): LanPeer => ({
  id, name: id, url: `http://${id}:4468`, host: `${id}.local`, address: id, port: 4468, services: ['echo'],
  load: 0, slots: 2, free, queue: 0, ageMs: 0, via: 'static',
})

test('peerChanges: nodes that came, changed (not by age alone) and went', () => {
  const aged = { ...peer('a'), ageMs: 5000 }
  assert.deepEqual(peerChanges([peer('a'), peer('b')], [aged, peer('b', 0), peer('c')]).map((c) => [c.event, c.peer.id]), [['up', 'c'], ['update', 'b']])
  assert.deepEqual(peerChanges([peer('a')], []).map((c) => [c.event, c.peer.id]), [['down', 'a']])
})

test('followPeers without mDNS: looks, reports changes, and returns once the signal aborts', async () => {
  const looks = [[peer('a')], [peer('a'), peer('b')], [peer('b')]]
  const seen: string[][] = []
  const stop = new AbortController()
  let n = 0
  await followPeers({ mdns: false, everyMs: 5, signal: stop.signal, look: async () => looks[Math.min(n++, looks.length - 1)] }, (peers, changes) => {
    seen.push(changes.map((c) => `${c.event} ${c.peer.id}`))
    if (n === looks.length) stop.abort()
  })
  assert.deepEqual(seen, [['up a'], ['up b'], ['down a']])
})

test('cancel, pause and resume are one command with three changes', () => {
  for (const [C, change] of [[Cancel, 'cancel'], [Pause, 'pause'], [Resume, 'resume']] as const) {
    assert.ok(C.prototype instanceof TaskChangeCommand)
    assert.equal((new (C as any)([], {}) as any).change, change)
    assert.ok(C.enableJsonFlag)
    assert.deepEqual(Object.keys(C.args), ['id'])
  }
})

test('StreamingForm: text fields and files by path, with their sizes; nothing more', () => {
  const d = mkdtempSync(join(tmpdir(), 'rrcloud-form-'))
  try {
    writeFileSync(join(d, 'x.scad'), 'cube(1);')
    const f = new StreamingForm()
    f.append('service', 'openscad')
    f.appendFile('fileIn0', join(d, 'x.scad'))
    assert.deepEqual(f.entries(), [['service', 'openscad'], ['fileIn0', { path: join(d, 'x.scad'), name: 'x.scad', size: 8, type: 'application/octet-stream' }]])
    for (const dead of ['getAll', Symbol.iterator, Symbol.toStringTag]) assert.ok(!(dead in f), String(dead))
  } finally {
    rmSync(d, { recursive: true, force: true })
  }
})

test('no node found: NoNodeError says where the client looked', async () => {
  const source = createLanSource({ mdns: false, local: { url: 'http://127.0.0.1:9', name: '127.0.0.1:9' }, unnamed: 'no --s, no rrcloudrc (./rrcloudrc)' })
  await assert.rejects(source.candidates('echo'), (e: unknown) => e instanceof NoNodeError &&
    e.message.startsWith('no rrcloud node found; looked at: 127.0.0.1:9 (no node there), not mDNS (RRCLOUD_MDNS is off), no --s, no rrcloudrc (./rrcloudrc). Start one'))
  assert.equal(source.looked(), '127.0.0.1:9 (no node there), not mDNS (RRCLOUD_MDNS is off), no --s, no rrcloudrc (./rrcloudrc)')
})
