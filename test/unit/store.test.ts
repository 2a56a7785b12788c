import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createStore } from '../../src/node/store.js'
import type { Task } from '../../src/node/task.js'

const task = (id: string): Task => ({ id, service: 'echo', status: 'queued', client: '127.0.0.1', server: 'n', cmd: 'cat', ctime: 1, in: [] })

test('the store shows a change once it is committed, and says so after the transaction', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rrcloud-store-'))
  const store = createStore({ dataDir: dir })
  const seen: string[] = []
  store.events.on('task', (t: Task) => seen.push(`${t.id} ${t.status} ${store.committed(t.id)?.status}`))
  try {
    store.insert(task('1-000001'))
    assert.equal(store.get('1-000001')?.status, 'queued', 'the runner sees its own change')
    assert.equal(store.committed('1-000001'), undefined, 'nobody else does yet')
    assert.deepEqual(store.pending().map((t) => t.id), ['1-000001'])
    await store.flushed()
    assert.deepEqual(seen, ['1-000001 queued queued'])

    store.update('1-000001', { status: 'busy', pid: 42 })
    assert.equal(store.get('1-000001')?.status, 'busy')
    assert.equal(store.committed('1-000001')?.status, 'queued')
    await store.flushed()
    assert.equal(store.committed('1-000001')?.pid, 42)
    assert.deepEqual(seen.at(-1), '1-000001 busy busy')

    store.update('1-000001', { status: 'complete', etime: 2 })
    assert.deepEqual(store.list().map((t) => t.status), ['complete'], 'a read of the database writes what is pending first')
    assert.equal(store.failure(), undefined)

    store.remove('1-000001')
    assert.equal(store.get('1-000001'), undefined)
    assert.deepEqual([...store.ids()], ['1-000001'], 'its row is there until the deletion is committed')
    await store.flushed()
    assert.deepEqual([...store.ids()], [])
    assert.equal(seen.length, 3, 'a deletion is not a task event')
  } finally {
    store.close()
    store.close()
    rmSync(dir, { recursive: true, force: true })
  }
})
