import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'

/** A row of the farm's database: a key, a place in order where it has one, and the record as JSON. */
export interface FarmRow<T> { key: string; pos?: number; value: T }

/** One table of records by key, written at once (the farm writes seldom: a state change, a job). */
export interface FarmTable<T> {
  get (key: string): T | undefined
  /** every record, by `pos` then by insertion */
  all (): Array<FarmRow<T>>
  put (key: string, value: T, pos?: number): void
  remove (key: string): void
}

export interface FarmDb {
  table<T> (name: 'printers' | 'claims' | 'jobs' | 'paused'): FarmTable<T>
  close (): void
}

/**
 * `farm.db` in the data folder (SQLite, WAL, synchronous=FULL): printer states, claims, the queue.
 * Each change is committed before the call returns, so that what the farm promised (a claim, a
 * job accepted, a bed that holds a print) survives a crash.
 */
export function openFarmDb (dataDir: string): FarmDb {
  mkdirSync(dataDir, { recursive: true })
  const db = new Database(join(dataDir, 'farm.db'))
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = FULL')
  const tables = new Map<string, FarmTable<unknown>>()
  let closed = false
  return {
    table<T> (name: string): FarmTable<T> {
      let t = tables.get(name)
      if (!t) {
        db.exec(`CREATE TABLE IF NOT EXISTS ${name} (key TEXT PRIMARY KEY, pos REAL, data TEXT NOT NULL)`)
        const sel = db.prepare(`SELECT data FROM ${name} WHERE key = ?`).pluck()
        const all = db.prepare(`SELECT key, pos, data FROM ${name} ORDER BY pos, rowid`)
        const put = db.prepare(`INSERT INTO ${name} (key, pos, data) VALUES (@key, @pos, @data)
          ON CONFLICT(key) DO UPDATE SET pos = excluded.pos, data = excluded.data`)
        const del = db.prepare(`DELETE FROM ${name} WHERE key = ?`)
        t = {
          get: (key) => { const d = sel.get(key) as string | undefined; return d === undefined ? undefined : JSON.parse(d) },
          all: () => (all.all() as Array<{ key: string, pos: number | null, data: string }>)
            .map((r) => ({ key: r.key, ...(r.pos === null ? {} : { pos: r.pos }), value: JSON.parse(r.data) })),
          put: (key, value, pos) => { put.run({ key, pos: pos ?? null, data: JSON.stringify(value) }) },
          remove: (key) => { del.run(key) },
        }
        tables.set(name, t)
      }
      return t as FarmTable<T>
    },
    close () {
      if (closed) return
      closed = true
      db.close()
    },
  }
}
