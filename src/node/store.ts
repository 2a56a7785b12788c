import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { FINAL, type Status, type Task } from './task.js'

export interface Store {
  /** queues the record for the next commit; `flushed()` resolves once it is on disk */
  insert (t: Task): void
  update (id: string, patch: Partial<Task>): Task | undefined
  get (id: string): Task | undefined
  list (): Task[]
  withStatus (...s: Status[]): Task[]
  endedBefore (t: number): Task[]
  remove (id: string): void
  /** resolves when every change made so far is committed; rejects if that commit failed */
  flushed (): Promise<void>
  close (): void
}

/**
 * Task records in SQLite (WAL, synchronous=NORMAL): a crash loses at most the last
 * transaction, never the file. Searchable columns beside the whole record as JSON.
 *
 * Changes made during one turn of the event loop are written together in one transaction at
 * the end of that turn (the node accepts a task only once its record is committed: see
 * `flushed`). Tasks that have not ended are also kept in memory, so that the runner's many
 * reads and updates of them cost no query and no JSON parse.
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

  /** tasks not yet ended, by id */
  const live = new Map<string, Task>()
  /** records to write at the end of this turn: the latest state, and whether it is a new row */
  const dirty = new Map<string, { task: Task; isNew: boolean }>()
  let waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> = []
  let scheduled = false

  const commit = db.transaction((rows: Array<{ task: Task; isNew: boolean }>) => {
    for (const r of rows) (r.isNew ? ins : upd).run(row(r.task))
  })
  function flush () {
    scheduled = false
    const rows = [...dirty.values()]
    const w = waiters
    dirty.clear()
    waiters = []
    try {
      if (rows.length) commit(rows)
    } catch (e) {
      // nothing of this turn was written: forget the new records, so that they are not served
      for (const r of rows) if (r.isNew) live.delete(r.task.id)
      w.forEach((x) => x.reject(e))
      return
    }
    w.forEach((x) => x.resolve())
  }
  function schedule () {
    if (scheduled || closed) return
    scheduled = true
    setImmediate(flush)
  }
  /** reads that go to the database first write what is pending */
  const sync = () => { if (dirty.size) flush() }
  const fromDb = (id: string) => {
    const d = dirty.get(id)
    if (d) return d.task
    const r = sel.get(id)
    return r ? parse(r) : undefined
  }
  const keep = (t: Task) => { if (FINAL.has(t.status)) live.delete(t.id); else live.set(t.id, t) }

  // what was running or waiting when the node last stopped
  for (const r of db.prepare(`SELECT data FROM tasks WHERE status NOT IN (${[...FINAL].map((s) => `'${s}'`).join(',')})`).all()) {
    const t = parse(r)
    live.set(t.id, t)
  }

  return {
    insert (t) {
      if (closed) throw new Error('the task store is closed')
      keep(t)
      dirty.set(t.id, { task: t, isNew: true })
      schedule()
    },
    update (id, patch) {
      const cur = live.get(id) ?? fromDb(id)
      if (!cur) return undefined
      const next = { ...cur, ...patch }
      keep(next)
      const d = dirty.get(id)
      dirty.set(id, { task: next, isNew: d?.isNew ?? false })
      schedule()
      return next
    },
    get (id) { return live.get(id) ?? fromDb(id) },
    list () { sync(); return all.all().map(parse) },
    withStatus (...s) {
      sync()
      return db.prepare(`SELECT data FROM tasks WHERE status IN (${s.map(() => '?').join(',')}) ORDER BY ctime, rowid`).all(...s).map(parse)
    },
    endedBefore (t) { sync(); return ended.all(t).map(parse) },
    remove (id) {
      sync()
      live.delete(id)
      del.run(id)
    },
    flushed () {
      if (!scheduled) return Promise.resolve()
      return new Promise((resolve, reject) => waiters.push({ resolve, reject }))
    },
    close () {
      if (closed) return
      sync()
      closed = true
      db.close()
    },
  }
}
