import Database from 'better-sqlite3'
import { createHash, randomBytes } from 'node:crypto'
import { chmodSync, closeSync, copyFileSync, existsSync, fstatSync, linkSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmSync, statSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { SHA256 } from './tree.js'

export interface BlobStoreConfig {
  dataDir: string
  /** bytes the blobs may take together (--cache-size); 0: no store, no result cache */
  maxBytes: number
}

export interface BlobStats {
  /** --cache-size, bytes (0: off) */
  limit: number
  bytes: number
  blobs: number
  /** results known by key */
  results: number
  /** tasks completed from the cache */
  hits: number
}

/** A result of an earlier task: its output's blob and the task that made it. */
export interface CachedResult { sha256: string; task: string }

/**
 * The node's content-addressed store: files named by their SHA-256 under `blobs/ab/<64 hex>`,
 * with their size and last use in `blobs.db`, and the result cache (task key → output blob).
 *
 * Files enter by hard link (a copy where the file system refuses one): an upload, a task's input
 * or output and its blob are one file on disk. Task folders hold links of their own, so that a
 * blob that goes (least recently used first, beyond `maxBytes`, or unused for the retention
 * period) never takes a task's file with it.
 *
 * Its own database, beside the task records: it is a cache, rebuilt from the folder when its
 * index is lost, and its frequent writes (every use) never hold up or fail a task record. Its
 * writes go in one transaction committed at most 100 ms later (reads see them at once): a crash
 * loses at most those rows, which the next start takes back from the folder (a blob's use time
 * is then its file's; a result recorded meanwhile is not known).
 */
export interface BlobStore {
  readonly enabled: boolean
  /** bytes the blobs may take together (0: off) */
  readonly limit: number
  /** the digests of `shas` this node does not hold, each once, in order; those held count as used */
  missing (shas: string[]): string[]
  /** the size of a held blob */
  size (sha: string): number | undefined
  /** the file of a held blob, to read (counts as a use) */
  file (sha: string): string | undefined
  /** takes a file that stays where it is (a task's input or output) into the store, by hard link */
  add (path: string, sha: string, size: number): void
  /** moves a checked upload into the store; false when the blob was held already (the upload is removed) */
  adopt (tmp: string, sha: string, size: number): boolean
  /** makes `dest` a link of a held blob; false when it is not held */
  linkTo (sha: string, dest: string): boolean
  /** the result recorded under `key`, when its output is still held */
  result (key: string): CachedResult | undefined
  /** records the result of a task under its key (replacing an older one) */
  record (key: string, sha: string, task: string): void
  /** counts a task completed from the cache */
  hit (key: string): void
  /** removes blobs unused since `before` (ms), and results whose output is gone; returns how many blobs */
  sweep (before: number): number
  stats (): BlobStats
  close (): void
}

const CHUNK = 1 << 20
/** how long the index's writes wait to be committed together, ms */
const BATCH_MS = 100

/**
 * The SHA-256 of a file, read in chunks of at most 1 MiB, through one buffer no larger than the
 * file: a stream would take a new 1 MiB buffer for every read, and a busy node that hashes many
 * small outputs would spend its time collecting them.
 */
export async function hashFile (path: string): Promise<{ sha256: string, size: number }> {
  const f = await open(path, 'r')
  try {
    const h = createHash('sha256')
    const buf = Buffer.allocUnsafe(Math.max(1, Math.min(CHUNK, (await f.stat()).size + 1)))
    let size = 0
    for (;;) {
      const n = (await f.read(buf, 0, buf.length, null)).bytesRead
      h.update(buf.subarray(0, n))
      size += n
      // a short read of a regular file is its end
      if (n < buf.length) return { sha256: h.digest('hex'), size }
    }
  } finally {
    await f.close()
  }
}

/**
 * The SHA-256 of a file of at most `max` bytes, read at once in the event loop (a few system calls,
 * no thread pool); undefined when it is larger.
 */
export function hashSmallFile (path: string, max: number): { sha256: string, size: number } | undefined {
  const fd = openSync(path, 'r')
  try {
    const size = fstatSync(fd).size
    if (size > max) return undefined
    const buf = Buffer.allocUnsafe(size + 1)
    const n = readSync(fd, buf, 0, buf.length, 0)
    // it grew meanwhile: not a finished output
    if (n > size) return undefined
    return { sha256: createHash('sha256').update(buf.subarray(0, n)).digest('hex'), size: n }
  } finally {
    closeSync(fd)
  }
}

const code = (e: unknown) => (e as NodeJS.ErrnoException)?.code ?? ''

/** A store that holds nothing: --cache-size 0. */
const none = (): BlobStore => ({
  enabled: false,
  limit: 0,
  missing: (shas) => [...new Set(shas)],
  size: () => undefined,
  file: () => undefined,
  add () {},
  adopt (tmp) { rmSync(tmp, { force: true }); return false },
  linkTo: () => false,
  result: () => undefined,
  record () {},
  hit () {},
  sweep: () => 0,
  stats: () => ({ limit: 0, bytes: 0, blobs: 0, results: 0, hits: 0 }),
  close () {},
})

export function createBlobStore (config: BlobStoreConfig, deps: { log?: (line: string) => void } = {}): BlobStore {
  if (config.maxBytes <= 0) return none()
  const log = deps.log ?? (() => {})
  const root = join(config.dataDir, 'blobs')
  mkdirSync(root, { recursive: true })
  const db = new Database(join(config.dataDir, 'blobs.db'))
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  db.exec(`CREATE TABLE IF NOT EXISTS blobs (sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, used REAL NOT NULL);
    CREATE INDEX IF NOT EXISTS blobs_used ON blobs(used);
    CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, sha256 TEXT NOT NULL, task TEXT NOT NULL, used REAL NOT NULL);
    CREATE INDEX IF NOT EXISTS results_sha256 ON results(sha256);
    CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL)`)
  const q = {
    get: db.prepare('SELECT size FROM blobs WHERE sha256 = ?').pluck(),
    put: db.prepare('INSERT INTO blobs (sha256, size, used) VALUES (?, ?, ?) ON CONFLICT(sha256) DO UPDATE SET used = excluded.used'),
    touch: db.prepare('UPDATE blobs SET used = ? WHERE sha256 = ?'),
    del: db.prepare('DELETE FROM blobs WHERE sha256 = ?'),
    lru: db.prepare('SELECT sha256, size FROM blobs ORDER BY used LIMIT 64'),
    unused: db.prepare('SELECT sha256, size FROM blobs WHERE used < ?'),
    all: db.prepare('SELECT sha256 FROM blobs').pluck(),
    total: db.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes FROM blobs'),
    result: db.prepare('SELECT r.sha256, r.task FROM results r JOIN blobs b ON b.sha256 = r.sha256 WHERE r.key = ?'),
    record: db.prepare('INSERT OR REPLACE INTO results (key, sha256, task, used) VALUES (?, ?, ?, ?)'),
    useResult: db.prepare('UPDATE results SET used = ? WHERE key = ?'),
    dropResults: db.prepare('DELETE FROM results WHERE sha256 = ?'),
    oldResults: db.prepare('DELETE FROM results WHERE used < ? OR sha256 NOT IN (SELECT sha256 FROM blobs)'),
    results: db.prepare('SELECT COUNT(*) FROM results').pluck(),
    hits: db.prepare("SELECT n FROM counters WHERE name = 'hits'").pluck(),
    hit: db.prepare("INSERT INTO counters (name, n) VALUES ('hits', 1) ON CONFLICT(name) DO UPDATE SET n = n + 1"),
  }
  const pathOf = (sha: string) => join(root, sha.slice(0, 2), sha)
  let closed = false

  /** the open transaction of the writes of the last moments, committed by this timer */
  let batch: NodeJS.Timeout | undefined
  const commitBatch = () => {
    clearTimeout(batch)
    batch = undefined
    if (!db.inTransaction) return
    try {
      db.exec('COMMIT')
    } catch (e) {
      log(`store: could not write the index of the content store: ${(e as Error).message}`)
      try { db.exec('ROLLBACK') } catch {}
    }
  }
  /** writes from here on go in the open transaction (one is begun if none is) */
  const writing = () => {
    if (db.inTransaction || closed) return
    db.exec('BEGIN')
    batch = setTimeout(commitBatch, BATCH_MS)
    batch.unref()
  }

  // the folder is the truth: an index row of no file goes, a file of no row (a crash between
  // the link and its row) comes back, as does a database that was lost
  const reconcile = db.transaction(() => {
    const known = new Set(q.all.all() as string[])
    for (const sha of known) if (!existsSync(pathOf(sha))) q.del.run(sha)
    for (const d of readdirSync(root)) {
      const dir = join(root, d)
      if (d.startsWith('.tmp-')) { rmSync(dir, { force: true }); continue }
      if (!/^[0-9a-f]{2}$/.test(d)) continue
      for (const f of readdirSync(dir)) {
        if (known.has(f)) continue
        const p = join(dir, f)
        if (!SHA256.test(f) || !f.startsWith(d)) { rmSync(p, { force: true }); continue }
        const st = statSync(p)
        q.put.run(f, st.size, st.mtimeMs)
      }
    }
    q.oldResults.run(0)
  })
  reconcile()
  const t0 = q.total.get() as { n: number, bytes: number }
  let bytes = t0.bytes

  /** a use, written where it can be: a full disk must not fail a read */
  const touch = (sha: string) => { try { writing(); q.touch.run(Date.now(), sha) } catch {} }

  function drop (sha: string, size: number) {
    rmSync(pathOf(sha), { force: true })
    q.del.run(sha)
    q.dropResults.run(sha)
    bytes -= size
  }

  /** least recently used first, until the store fits its limit */
  const evict = db.transaction(() => {
    let n = 0
    while (bytes > config.maxBytes) {
      const rows = q.lru.all() as Array<{ sha256: string, size: number }>
      if (rows.length === 0) break
      for (const r of rows) {
        if (bytes <= config.maxBytes) break
        drop(r.sha256, r.size)
        n++
      }
    }
    return n
  })

  /** links `from` to `to`, or copies it through a temporary file where links are refused (another file system, too many links) */
  function linkOrCopy (from: string, to: string) {
    try {
      linkSync(from, to)
    } catch (e) {
      if (!['EXDEV', 'EMLINK', 'EPERM', 'ENOTSUP'].includes(code(e))) throw e
      const tmp = join(root, `.tmp-${randomBytes(8).toString('hex')}`)
      try {
        copyFileSync(from, tmp)
        renameSync(tmp, to)
      } finally { rmSync(tmp, { force: true }) }
    }
  }

  /** a new blob's row, then room for it */
  function admit (sha: string, size: number) {
    const had = q.get.get(sha) as number | undefined
    q.put.run(sha, size, Date.now())
    if (had === undefined) bytes += size
    if (bytes <= config.maxBytes) return
    const gone = evict()
    if (gone) log(`store: removed ${gone} least recently used blob(s) to stay within ${config.maxBytes} bytes (--cache-size)`)
  }

  /** the folders blobs go in (`ab/`), made once */
  const made = new Set<string>()
  const folderFor = (sha: string) => {
    const dir = join(root, sha.slice(0, 2))
    if (!made.has(dir)) {
      mkdirSync(dir, { recursive: true })
      made.add(dir)
    }
  }

  return {
    enabled: true,
    limit: config.maxBytes,
    missing (shas) {
      const unique = [...new Set(shas)]
      const out = unique.filter((sha) => q.get.get(sha) === undefined)
      const now = Date.now()
      // those held count as used: a task that names them is likely to come
      try {
        writing()
        for (const sha of unique) q.touch.run(now, sha)
      } catch {}
      return out
    },
    size: (sha) => SHA256.test(sha) ? q.get.get(sha) as number | undefined : undefined,
    file (sha) {
      if (!SHA256.test(sha) || q.get.get(sha) === undefined) return undefined
      touch(sha)
      return pathOf(sha)
    },
    add (path, sha, size) {
      if (closed || size > config.maxBytes) return
      const to = pathOf(sha)
      if (q.get.get(sha) !== undefined && existsSync(to)) { touch(sha); return }
      writing()
      folderFor(sha)
      try {
        linkOrCopy(path, to)
      } catch (e) {
        if (code(e) !== 'EEXIST') throw e
      }
      // a blob is never written to: not by a tool that sees it as its input either
      chmodSync(to, 0o444)
      admit(sha, size)
    },
    adopt (tmp, sha, size) {
      const to = pathOf(sha)
      if (closed || size > config.maxBytes || (q.get.get(sha) !== undefined && existsSync(to))) {
        rmSync(tmp, { force: true })
        touch(sha)
        return false
      }
      writing()
      folderFor(sha)
      chmodSync(tmp, 0o444)
      renameSync(tmp, to)
      try {
        admit(sha, size)
      } catch (e) {
        rmSync(to, { force: true })
        throw e
      }
      return true
    },
    linkTo (sha, dest) {
      if (q.get.get(sha) === undefined) return false
      try {
        linkOrCopy(pathOf(sha), dest)
      } catch (e) {
        if (code(e) !== 'ENOENT') throw e
        // gone from the folder behind the index's back
        writing()
        const size = q.get.get(sha) as number
        drop(sha, size)
        return false
      }
      touch(sha)
      return true
    },
    result (key) {
      const r = q.result.get(key) as CachedResult | undefined
      if (!r) return undefined
      if (!existsSync(pathOf(r.sha256))) {
        try { writing(); drop(r.sha256, q.get.get(r.sha256) as number ?? 0) } catch {}
        return undefined
      }
      return r
    },
    record (key, sha, task) {
      if (closed || q.get.get(sha) === undefined) return
      writing()
      q.record.run(key, sha, task, Date.now())
    },
    hit (key) {
      try {
        writing()
        q.useResult.run(Date.now(), key)
        q.hit.run()
      } catch {}
    },
    sweep (before) {
      if (closed) return 0
      const old = q.unused.all(before) as Array<{ sha256: string, size: number }>
      writing()
      db.transaction(() => {
        for (const r of old) drop(r.sha256, r.size)
        q.oldResults.run(before)
      })()
      if (old.length) log(`retention: removed ${old.length} blob(s) unused since ${new Date(before).toISOString()}`)
      return old.length
    },
    stats () {
      const t = q.total.get() as { n: number, bytes: number }
      return { limit: config.maxBytes, bytes: t.bytes, blobs: t.n, results: q.results.get() as number, hits: (q.hits.get() as number | undefined) ?? 0 }
    },
    close () {
      if (closed) return
      commitBatch()
      closed = true
      db.close()
    },
  }
}
