import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { FINAL_PIPELINE, type Pipeline } from './pipeline.js'

/** Pipelines as the driving node keeps them: one row each in `pipelines.db`, the whole record as JSON. */
export interface PipelineStore {
  /** writes the record now (insert or replace); throws when it cannot */
  save (p: Pipeline): void
  get (id: string): Pipeline | undefined
  /** oldest first */
  list (): Pipeline[]
  /** those not ended: to drive again after a restart */
  active (): Pipeline[]
  /** removes pipelines that ended before `t` (epoch seconds); returns how many */
  sweep (t: number): number
  close (): void
}

/**
 * A database of its own beside `tasks.db` (WAL, synchronous=NORMAL): pipelines change a few times
 * per stage, and each change is written at once, so that a driver that restarts finds every
 * pipeline where it was, with the node and task of its running stage.
 */
export function createPipelineStore (config: { dataDir: string }): PipelineStore {
  mkdirSync(config.dataDir, { recursive: true })
  const db = new Database(join(config.dataDir, 'pipelines.db'))
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  db.exec(`CREATE TABLE IF NOT EXISTS pipelines (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, ctime REAL NOT NULL, etime REAL, data TEXT NOT NULL)`)
  db.exec('CREATE INDEX IF NOT EXISTS pipelines_status ON pipelines(status)')
  const put = db.prepare('INSERT OR REPLACE INTO pipelines (id, status, ctime, etime, data) VALUES (@id, @status, @ctime, @etime, @data)')
  const sel = db.prepare('SELECT data FROM pipelines WHERE id = ?').pluck()
  const all = db.prepare('SELECT data FROM pipelines ORDER BY ctime, rowid').pluck()
  const running = db.prepare(`SELECT data FROM pipelines WHERE status NOT IN (${[...FINAL_PIPELINE].map((s) => `'${s}'`).join(',')}) ORDER BY ctime, rowid`).pluck()
  const old = db.prepare('DELETE FROM pipelines WHERE etime IS NOT NULL AND etime < ?')
  const parse = (r: unknown) => JSON.parse(r as string) as Pipeline
  let closed = false
  return {
    save (p) {
      put.run({ id: p.id, status: p.status, ctime: p.ctime, etime: p.etime ?? null, data: JSON.stringify(p) })
    },
    get (id) {
      const r = sel.get(id)
      return r === undefined ? undefined : parse(r)
    },
    list: () => all.all().map(parse),
    active: () => running.all().map(parse),
    sweep: (t) => old.run(t).changes,
    close () {
      if (closed) return
      closed = true
      db.close()
    },
  }
}
