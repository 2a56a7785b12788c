import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Status, Task } from './task.js'

export interface Store {
  insert (t: Task): void
  update (id: string, patch: Partial<Task>): Task | undefined
  get (id: string): Task | undefined
  list (): Task[]
  withStatus (...s: Status[]): Task[]
  endedBefore (t: number): Task[]
  remove (id: string): void
  close (): void
}

/**
 * Task records in SQLite (WAL, synchronous=NORMAL): a crash loses at most the last
 * transaction, never the file. Searchable columns beside the whole record as JSON.
 */
export function createStore (config: { dataDir: string }): Store {
  mkdirSync(config.dataDir, { recursive: true })
  const db = new Database(join(config.dataDir, 'tasks.db'))
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  db.exec(`CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, ctime REAL NOT NULL, etime REAL, data TEXT NOT NULL)`)
  db.exec('CREATE INDEX IF NOT EXISTS tasks_status ON tasks(status)')
  const ins = db.prepare('INSERT INTO tasks (id, status, ctime, etime, data) VALUES (@id, @status, @ctime, @etime, @data)')
  const upd = db.prepare('UPDATE tasks SET status = @status, etime = @etime, data = @data WHERE id = @id')
  const sel = db.prepare('SELECT data FROM tasks WHERE id = ?')
  const all = db.prepare('SELECT data FROM tasks ORDER BY ctime, rowid')
  const ended = db.prepare('SELECT data FROM tasks WHERE etime IS NOT NULL AND etime < ?')
  const del = db.prepare('DELETE FROM tasks WHERE id = ?')
  const row = (t: Task) => ({ id: t.id, status: t.status, ctime: t.ctime, etime: t.etime ?? null, data: JSON.stringify(t) })
  const parse = (r: unknown) => JSON.parse((r as { data: string }).data) as Task
  let closed = false

  return {
    insert (t) { ins.run(row(t)) },
    update (id, patch) {
      const cur = sel.get(id)
      if (!cur) return undefined
      const next = { ...parse(cur), ...patch }
      upd.run(row(next))
      return next
    },
    get (id) {
      const r = sel.get(id)
      return r ? parse(r) : undefined
    },
    list () { return all.all().map(parse) },
    withStatus (...s) {
      return db.prepare(`SELECT data FROM tasks WHERE status IN (${s.map(() => '?').join(',')}) ORDER BY ctime, rowid`).all(...s).map(parse)
    },
    endedBefore (t) { return ended.all(t).map(parse) },
    remove (id) { del.run(id) },
    close () {
      if (closed) return
      closed = true
      db.close()
    },
  }
}
