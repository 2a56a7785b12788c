import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, utimesSync, writeFileSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { taskView } from '../../src/node/render.js'
import { fixtures, getJson, post, sleep, testNode, testServices, until, waitTask } from '../helpers/node.js'

/** Writes `path` until the file system has no byte left. */
function fill (path: string) {
  const fd = openSync(path, 'w')
  try {
    for (const size of [1 << 20, 64 << 10, 4 << 10, 512]) {
      const buf = Buffer.alloc(size, 1)
      try { for (;;) writeSync(fd, buf) } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e }
    }
  } finally { closeSync(fd) }
}

test('a full disk: the API shows only what the database holds, and a task that ended meanwhile fails once space is back', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('mounting a small tmpfs needs root')
  const dataDir = mkdtempSync(join(tmpdir(), 'rrcloud-full-'))
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', dataDir])
  after(() => {
    try { execFileSync('umount', [dataDir]) } catch {}
    rmSync(dataDir, { recursive: true, force: true })
  })
  const node = await testNode({ dataDir, serviceDirs: [testServices, join(fixtures, 'store-services')] })
  const db = new Database(join(dataDir, 'tasks.db'), { readonly: true })
  const stored = (id: string) => taskView(JSON.parse((db.prepare('SELECT data FROM tasks WHERE id = ?').get(id) as { data: string }).data))
  const task = async (id: string) => await getJson(`${node.url}/api/v1/tasks/${id}`)
  const filler = join(dataDir, 'filler')
  try {
    // one tool has written its whole output and exits 0 once the disk is full; the other ends later
    const { body: a } = await post(node.url, { service: 'settle' }, [['fileIn0', '2', 'a.txt']])
    const { body: b } = await post(node.url, { service: 'slow' }, [['fileIn0', '3', 'b.txt']])
    await until(async () => (await task(a.id)).pid && (await task(b.id)).pid, 5000, 'both busy with their pids')
    await until(() => existsSync(join(dataDir, 'tasks/run', a.id, `${a.id}.txt`)), 5000, 'the output of the first')
    const sse = fetch(`${node.url}/api/v1/tasks/${a.id}/events`).then((r) => r.text())
    fill(filler)
    await until(() => node.lines.some((l) => l.startsWith('store: cannot write task records: database or disk is full')), 10000, 'a failed write to be logged')
    await until(() => node.runner.stats().running === 0, 10000, 'both tools to end')
    assert.equal(node.lines.filter((l) => l.startsWith('store: cannot write')).length, 1, node.lines.join('\n'))

    // the node shows what the database holds: both still busy, as far as anyone can tell
    for (const id of [a.id, b.id]) {
      assert.equal(stored(id).status, 'busy')
      assert.deepEqual(await task(id), stored(id), 'GET shows the record as the database holds it')
      assert.deepEqual((await getJson(`${node.url}/api/v1/tasks`)).find((x: { id: string }) => x.id === id), stored(id), 'so does the list')
    }
    assert.equal((await getJson(`${node.url}/api/v1/tasks/${a.id}?wait=1`)).status, 'busy', 'a long poll does not end on a state the database lacks')
    const refused = await fetch(`${node.url}/api/v1/tasks`, { method: 'POST', body: new URLSearchParams({ service: 'echo', fileIn0: 'x' }), headers: { accept: 'application/json' } })
    assert.equal(refused.status, 507)
    assert.match((await refused.json() as { error: string }).error, /cannot write its task records/)
    await sleep(1500)
    assert.equal((await task(a.id)).status, 'busy', 'still not written')

    rmSync(filler)
    for (const id of [a.id, b.id]) {
      const ended = await until(async () => { const x = await task(id); return x.status !== 'busy' && x }, 5000, 'the task to end once space is back')
      assert.equal(ended.status, 'failed')
      assert.equal(ended.error, 'disk full: database or disk is full')
      assert.deepEqual(stored(id), ended)
      assert.ok(node.lines.includes(`task ${id} failed: ${ended.error}`), node.lines.join('\n'))
      assert.equal((await fetch(`${node.url}/api/v1/tasks/${id}/output`)).status, 409)
      assert.equal((await fetch(`${node.url}/tasks/out/${id}.txt`)).status, 409, 'its output is not served')
      assert.ok(!existsSync(join(dataDir, 'tasks/out', `${id}.txt`)), 'nor kept')
    }
    assert.equal(node.lines.filter((l) => l === 'store: task records are written again').length, 1, node.lines.join('\n'))
    const states = (await sse).split('\n\n').filter(Boolean).map((e) => JSON.parse(e.split('data: ')[1]).status)
    assert.deepEqual(states, ['busy', 'failed'], 'the events stream never showed the completion that was not written')

    const { status, body: next } = await post(node.url, { service: 'echo' }, [['fileIn0', 'again', 'a.txt']])
    assert.equal(status, 201)
    assert.equal((await waitTask(node.url, next.id)).status, 'complete')
    assert.equal(stored(next.id).status, 'complete')
  } finally {
    db.close()
    rmSync(filler, { force: true })
    await node.stop()
  }
})

test('files of no task are removed at start, and by the sweeper once older than the retention period', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'rrcloud-orphans-'))
  try {
    const first = await testNode({ dataDir })
    const { body: kept } = await post(first.url, { service: 'echo' }, [['fileIn0', 'kept', 'k.txt']])
    await waitTask(first.url, kept.id)
    await first.stop()
    const mine = [`tasks/in/${kept.id}-0.txt`, `tasks/out/${kept.id}`, `tasks/log/${kept.id}`].map((f) => join(dataDir, f))
    assert.ok(mine.every((f) => existsSync(f)))

    // what a crash leaves: files written before their record, or whose record is gone
    const lost = '1795867666-884502'
    mkdirSync(join(dataDir, 'tasks/run', lost), { recursive: true })
    mkdirSync(join(dataDir, 'tasks/in', lost, 'sub'), { recursive: true })
    const orphans = [`tasks/in/${lost}-0.scad`, `tasks/in/${lost}-1.txt`, `tasks/in/${lost}/sub/lib.scad`, `tasks/out/${lost}.stl`, `tasks/log/${lost}`,
      `tasks/run/${lost}/part.stl`, 'tasks/tmp/3f9a0c1b2d4e5f60718293a4'].map((f) => join(dataDir, f))
    for (const f of orphans) writeFileSync(f, 'left over')

    const node = await testNode({ dataDir, retentionHours: 1 })
    try {
      for (const f of orphans) assert.ok(!existsSync(f), `${f} is removed`)
      assert.ok(!existsSync(join(dataDir, 'tasks/run', lost)))
      assert.ok(!existsSync(join(dataDir, 'tasks/in', lost)), 'the folder of a task whose files had paths')
      assert.ok(mine.every((f) => existsSync(f)), 'a task\'s files stay')
      assert.equal(await (await fetch(`${node.url}/api/v1/tasks/${kept.id}/output`)).text(), 'kept')
      assert.ok(node.lines.includes('start: removed 7 file(s) of no task'), node.lines.join('\n'))

      // while the node runs: only what is older than the retention period goes
      const old = join(dataDir, 'tasks/out', '1795867000-000001.stl')
      const upload = join(dataDir, 'tasks/tmp', 'a1b2c3d4e5f60718293a4b5c')
      writeFileSync(old, 'old')
      writeFileSync(upload, 'an upload in progress')
      const twoHoursAgo = new Date(Date.now() - 2 * 3600e3)
      utimesSync(old, twoHoursAgo, twoHoursAgo)
      assert.equal(node.runner.sweep(), 0)
      assert.ok(!existsSync(old))
      assert.ok(existsSync(upload), 'a recent upload stays')
      assert.ok(mine.every((f) => existsSync(f)))
    } finally { await node.stop() }
  } finally { rmSync(dataDir, { recursive: true, force: true }) }
})
