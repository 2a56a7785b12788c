// Placements by other client processes of this machine, counted against a snapshot of the LAN.
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn, spawnSync } from 'node:child_process'
import { rank, spread, type PeerInfo } from '../../src/scheduler/rank.js'
import { parsePlacements, SHOWN_AFTER_MS, withPlacements } from '../../src/scheduler/placed.js'

const peer = (id: string, slots: number, o: Partial<PeerInfo> = {}): PeerInfo & { at: number } => ({
  id, name: id, url: `http://${id}:4468`, services: ['nap'], load: 0, slots, free: slots, queue: 0, at: 10_000, ...o,
})
const lan = () => [peer('one', 1), peer('two', 2), peer('three', 3)]

test('placements made after a record was current count against it; older ones it shows already', () => {
  const fresh = 10_000 - SHOWN_AFTER_MS + 1
  const stale = 10_000 - SHOWN_AFTER_MS - 1
  const out = withPlacements(lan(), [{ at: fresh, id: 'three' }, { at: fresh, id: 'three' }, { at: stale, id: 'two' }, { at: fresh, id: 'gone' }], (p) => p.at)
  assert.deepEqual(out.map((p) => [p.id, p.free, p.queue]), [['one', 1, 0], ['two', 2, 0], ['three', 1, 0]])
  // a full node queues the rest
  const full = withPlacements([peer('one', 1)], [{ at: 20_000, id: 'one' }, { at: 20_000, id: 'one' }], (p) => p.at)
  assert.deepEqual([full[0].free, full[0].queue], [0, 1])
})

test('30 clients that each see the journal split 30 tasks over 1, 2 and 3 slots as 5, 10 and 15, whatever they draw', () => {
  for (const seed of [0.01, 0.5, 0.99]) {
    const placed: Array<{ at: number, id: string }> = []
    let r = seed
    for (let i = 0; i < 30; i++) {
      r = (r * 9301 + 49297) % 233280 / 233280
      const seen = withPlacements(lan(), placed, (p) => p.at)
      placed.push({ at: 10_000 + i, id: spread(rank('nap', {}, seen), r)[0].peer.id })
    }
    const count = (id: string) => placed.filter((x) => x.id === id).length
    assert.deepEqual([count('one'), count('two'), count('three')], [5, 10, 15], `draws from ${seed}`)
  }
})

test('the journal: lines that do not parse and old ones are skipped', () => {
  const text = '1700000000000 aaaa\ngarbage\n1700000005000 bbbb\n1700000009000 has space\n1700000009500 c:d.e-f\n'
  assert.deepEqual(parsePlacements(text, 1700000001000), [{ at: 1700000005000, id: 'bbbb' }, { at: 1700000009500, id: 'c:d.e-f' }])
})

test('the journal: `AT ID -` takes back that placement, once (a task that went elsewhere, or a cache hit)', () => {
  const text = '1700000005000 bbbb\n1700000005000 bbbb\n1700000006000 cccc\n1700000005000 bbbb -\n1700000006000 cccc -\n1700000007000 dddd -\n1700000008000 cccc\n'
  assert.deepEqual(parsePlacements(text, 1700000001000), [{ at: 1700000005000, id: 'bbbb' }, { at: 1700000008000, id: 'cccc' }])
})

const dir = mkdtempSync(join(tmpdir(), 'rrcloud-placed-'))
after(() => rmSync(dir, { recursive: true, force: true }))

test('clients record their placements in a folder of the user\'s own, read by the next client', () => {
  const script = `
    import { notePlacement, recentPlacements } from './src/client/placed.ts'
    const [cmd, id] = process.argv.slice(-2)
    if (cmd === 'note') notePlacement(id)
    else console.log(JSON.stringify(recentPlacements()))`
  const run = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, '--', ...args],
    { env: { ...process.env, XDG_RUNTIME_DIR: dir }, encoding: 'utf8' })
  for (const id of ['n1', 'n2', 'n2']) assert.equal(run('note', id).status, 0)
  const r = run('read', '-')
  assert.equal(r.status, 0, r.stderr)
  assert.deepEqual(JSON.parse(r.stdout).map((x: { id: string }) => x.id), ['n1', 'n2', 'n2'])
  const folder = join(dir, `rrcloud-${process.getuid!()}`)
  assert.equal(statSync(folder).mode & 0o777, 0o700)
  assert.match(readFileSync(join(folder, 'placed'), 'utf8'), /^\d+ n1\n\d+ n2\n\d+ n2\n$/)
})

test('processes that choose at the same moment choose one after the other: 12 over 1, 2 and 3 slots give 2, 4 and 6', async () => {
  const own = mkdtempSync(join(tmpdir(), 'rrcloud-placed-'))
  after(() => rmSync(own, { recursive: true, force: true }))
  // each holds the journal, takes the best node as the journal leaves it, dawdles, notes it
  const script = `
    import { holdJournal, notePlacement } from './src/client/placed.ts'
    import { rank } from './src/scheduler/rank.ts'
    import { withPlacements } from './src/scheduler/placed.ts'
    const lan = [['one', 1], ['two', 2], ['three', 3]].map(([id, slots]) => ({ id, name: id, url: id, services: ['nap'], load: 0, slots, free: slots, queue: 0 }))
    const start = Number(process.argv.at(-1))
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Math.max(0, start - Date.now()))
    const j = holdJournal()
    const id = rank('nap', {}, withPlacements(lan, j.placed, () => 0))[0].peer.id
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3)
    notePlacement(id)
    j.release()`
  const start = Date.now() + 3000
  const runs = Array.from({ length: 12 }, () => new Promise<number | null>((resolve) => {
    const c = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, '--', String(start)],
      { env: { ...process.env, XDG_RUNTIME_DIR: own }, stdio: 'ignore' })
    c.once('close', resolve)
  }))
  assert.deepEqual(await Promise.all(runs), Array(12).fill(0))
  const placed = readFileSync(join(own, `rrcloud-${process.getuid!()}`, 'placed'), 'utf8').trim().split('\n').map((l) => l.split(' ')[1])
  const count = (id: string) => placed.filter((x) => x === id).length
  assert.deepEqual([count('one'), count('two'), count('three')], [2, 4, 6])
})
