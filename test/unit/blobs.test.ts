import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createBlobStore, hashFile } from '../../src/node/blobs.js'
import { parseSize } from '../../src/node/node.js'

const sha = (b: string) => createHash('sha256').update(b).digest('hex')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

test('blobs enter by link, the least recently used go first, and the folder is the truth at start', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rrcloud-blobs-'))
  const file = (name: string, content: string) => { const p = join(dir, name); writeFileSync(p, content); return p }
  try {
    let store = createBlobStore({ dataDir: dir, maxBytes: 30 })
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((x) => x.repeat(10))
    const pa = file('a', a)
    store.add(pa, sha(a), 10)
    assert.equal(statSync(pa).ino, statSync(join(dir, 'blobs', sha(a).slice(0, 2), sha(a))).ino, 'a link, not a copy')
    assert.equal(statSync(pa).mode & 0o777, 0o444, 'read-only')
    assert.deepEqual(await hashFile(pa), { sha256: sha(a), size: 10 })
    await sleep(3)
    store.add(file('b', b), sha(b), 10)
    await sleep(3)
    store.add(file('c', c), sha(c), 10)
    await sleep(3)
    // a use makes a the most recent: b is the oldest now
    assert.ok(store.linkTo(sha(a), join(dir, 'a-again')))
    assert.equal(readFileSync(join(dir, 'a-again'), 'utf8'), a)
    await sleep(3)
    store.add(file('d', d), sha(d), 10)
    assert.deepEqual(store.missing([sha(a), sha(b), sha(c), sha(d)]), [sha(b)])
    assert.equal(store.stats().bytes, 30)
    assert.ok(existsSync(join(dir, 'b')), 'a file of a task stays when its blob goes')

    // results go with their output's blob
    store.record('k1', sha(c), '1-000001')
    assert.deepEqual(store.result('k1'), { sha256: sha(c), task: '1-000001' })
    store.hit('k1')
    store.close()
    store.close()

    // a blob removed by hand, and one whose row was lost
    unlinkSync(join(dir, 'blobs', sha(d).slice(0, 2), sha(d)))
    store = createBlobStore({ dataDir: dir, maxBytes: 30 })
    assert.deepEqual(store.missing([sha(a), sha(c), sha(d)]), [sha(d)])
    assert.deepEqual(store.stats(), { limit: 30, bytes: 20, blobs: 2, results: 1, hits: 1 })
    // an upload moves in; one held already is dropped
    assert.equal(store.adopt(file('up', d), sha(d), 10), true)
    assert.equal(store.adopt(file('up2', d), sha(d), 10), false)
    assert.ok(!existsSync(join(dir, 'up2')))
    // retention: unused since
    assert.equal(store.sweep(Date.now() + 1000), 3)
    assert.equal(store.result('k1'), undefined)
    assert.deepEqual(store.stats(), { limit: 30, bytes: 0, blobs: 0, results: 0, hits: 1 })
    store.close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('--cache-size takes bytes or K, M, G, T (powers of 1024)', () => {
  assert.equal(parseSize('0'), 0)
  assert.equal(parseSize('1048576'), 1 << 20)
  assert.equal(parseSize('500M'), 500 * 2 ** 20)
  assert.equal(parseSize('2G'), 2 * 2 ** 30)
  assert.equal(parseSize('2GiB'), 2 * 2 ** 30)
  assert.equal(parseSize('1.5g'), 1.5 * 2 ** 30)
  assert.equal(parseSize('64k'), 65536)
  for (const bad of ['', 'lots', '-1G', '2X', '1e9']) assert.throws(() => parseSize(bad), /is not a size/, bad)
})
