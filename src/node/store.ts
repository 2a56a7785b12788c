import Database from 'better-sqlite3'
import { EventEmitter } from 'node:events'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { StoreUnwritable } from './errors.js'
import { FINAL, type Status, type Task } from './task.js'

export interface Store {
  /** queues the record for the next commit; `flushed()` resolves once it is on disk */
  insert (t: Task): void
  /**
   * changes a task now; the change is committed at the end of this turn, or once writes work again;
   * `soon`: with the next commit, at most 20 ms later (a detail that may wait for other changes)
   */
  update (id: string, patch: Partial<Task>, soon?: boolean): Task | undefined
  /** the task with its changes not yet committed: the runner's own view */
  get (id: string): Task | undefined
  /** the task as the database holds it: what the node shows */
  committed (id: string): Task | undefined
  /** the tasks as the database holds them (so are `withStatus` and `endedBefore`) */
  list (): Task[]
  /** how many tasks `list` would give, without reading them */
  count (): number
  withStatus (...s: Status[]): Task[]
  endedBefore (t: number): Task[]
  /** the id of every task, committed or about to be */
  ids (): Set<string>
  /** tasks with changes not yet committed, as they will be */
  pending (): Task[]
  /** queues the deletion of a task's record */
  remove (id: string): void
  /** the error of the last write while writes fail, else undefined */
  failure (): Error | undefined
  /** resolves when every change made so far is committed; rejects (StoreUnwritable) if that commit failed */
  flushed (): Promise<void>
  /**
   * 'task' (Task): a record as committed, after its transaction; 'unwritable' (Error) when writes
   * start failing; 'writable' when they work again
   */
  events: EventEmitter
  close (): void
}

export interface StoreDeps {
  /** one line when writes start failing and one when they work again */
  log?: (line: string) => void
}

/** while writes fail, how often the pending changes are tried again */
const RETRY_MS = 1000
/** how long a change made `soon` waits for others to be committed with */
const SOON_MS = 20

/**
 * Task records in SQLite (WAL, synchronous=NORMAL): a crash loses at most the last
 * transaction, never the file. Searchable columns beside the whole record as JSON.
 *
 * Changes made during one turn of the event loop are written together in one transaction at
 * the end of that turn (the node accepts a task only once its record is committed: see
 * `flushed`). Only committed records are shown (`committed`, `list`, 'task' events); tasks that
 * have not ended are also kept in memory as committed, so that reads of them cost no query.
 *
 * A failed commit (a full disk) loses nothing that was accepted: changes to stored tasks are kept
 * and tried again every second until they are written; new records of that commit are dropped,
 * and whoever waits for them is told (their submission is refused).
 */
export function createStore (config: { dataDir: string }, deps: StoreDeps = {}): Store {
  const log = deps.log ?? (() => {})
  mkdirSync(config.dataDir, { recursive: true })
  const db = new Database(join(config.dataDir, 'tasks.db'))
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  db.exec(`CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, ctime REAL NOT NULL, etime REAL, data TEXT NOT NULL)`)
  db.exec('CREATE INDEX IF NOT EXISTS tasks_status ON tasks(status)')
  // a write that tells whether writes work again when no change is pending
  db.exec('CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY, at REAL NOT NULL)')
  const ins = db.prepare('INSERT INTO tasks (id, status, ctime, etime, data) VALUES (@id, @status, @ctime, @etime, @data)')
  const upd = db.prepare('UPDATE tasks SET status = @status, etime = @etime, data = @data WHERE id = @id')
  const sel = db.prepare('SELECT data FROM tasks WHERE id = ?')
  const all = db.prepare('SELECT data FROM tasks ORDER BY ctime, rowid')
  const ended = db.prepare('SELECT data FROM tasks WHERE etime IS NOT NULL AND etime < ?')
  const idList = db.prepare('SELECT id FROM tasks').pluck()
  const total = db.prepare('SELECT COUNT(*) FROM tasks').pluck()
  const del = db.prepare('DELETE FROM tasks WHERE id = ?')
  const probe = db.prepare('INSERT OR REPLACE INTO probe (id, at) VALUES (1, ?)')
  const row = (t: Task) => ({ id: t.id, status: t.status, ctime: t.ctime, etime: t.etime ?? null, data: JSON.stringify(t) })
  const parse = (r: unknown) => JSON.parse((r as { data: string }).data) as Task
  const events = new EventEmitter()
  events.setMaxListeners(0)
  let closed = false

  /** tasks not yet ended, as committed, by id */
  const live = new Map<string, Task>()
  interface Change { task: Task; isNew: boolean; removed?: boolean }
  /** changes not yet committed: the latest state, whether it is a new row, or a deletion */
  const dirty = new Map<string, Change>()
  let waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> = []
  let scheduled = false
  /** the last write's error while writes fail */
  let failing: Error | undefined
  let retry: NodeJS.Timeout | undefined

  const commit = db.transaction((rows: Change[]) => {
    for (const r of rows) {
      if (r.removed) del.run(r.task.id)
      else (r.isNew ? ins : upd).run(row(r.task))
    }
  })
  let soonTimer: NodeJS.Timeout | undefined
  function flush () {
    scheduled = false
    clearTimeout(soonTimer)
    soonTimer = undefined
    const rows = [...dirty.values()]
    const w = waiters
    dirty.clear()
    waiters = []
    try {
      if (rows.length) commit(rows)
      else if (failing) probe.run(Date.now() / 1000)
    } catch (err) {
      // nothing of this turn was written: keep the changes of stored tasks, refuse the new ones
      for (const r of rows) if (!r.isNew) dirty.set(r.task.id, r)
      fail(err instanceof Error ? err : new Error(String(err)))
      w.forEach((x) => x.reject(new StoreUnwritable(failing!)))
      return
    }
    if (failing) {
      failing = undefined
      clearInterval(retry)
      log('store: task records are written again')
      events.emit('writable')
    }
    for (const r of rows) {
      if (r.removed) live.delete(r.task.id)
      else if (FINAL.has(r.task.status)) live.delete(r.task.id)
      else live.set(r.task.id, r.task)
    }
    w.forEach((x) => x.resolve())
    for (const r of rows) if (!r.removed) events.emit('task', r.task)
  }
  function fail (e: Error) {
    const first = !failing
    failing = e
    if (!first) return
    log(`store: cannot write task records: ${e.message}; trying again every ${RETRY_MS / 1000} s, new tasks are refused meanwhile`)
    retry = setInterval(() => { if (!closed) flush() }, RETRY_MS)
    events.emit('unwritable', e)
  }
  function schedule () {
    // while writes fail, the retry timer writes
    if (scheduled || closed || failing) return
    scheduled = true
    setImmediate(flush)
  }
  function scheduleSoon () {
    if (scheduled || closed || failing || soonTimer) return
    soonTimer = setTimeout(() => { soonTimer = undefined; schedule() }, SOON_MS)
    soonTimer.unref()
  }
  /** reads that go to the database first write what is pending */
  const sync = () => { if (dirty.size && !failing && !closed) flush() }
  const committed = (id: string) => {
    const t = live.get(id)
    if (t) return t
    const r = sel.get(id)
    return r ? parse(r) : undefined
  }
  const get = (id: string) => {
    const d = dirty.get(id)
    if (d) return d.removed ? undefined : d.task
    return committed(id)
  }

  // what was running or waiting when the node last stopped
  for (const r of db.prepare(`SELECT data FROM tasks WHERE status NOT IN (${[...FINAL].map((s) => `'${s}'`).join(',')})`).all()) {
    const t = parse(r)
    live.set(t.id, t)
  }

  return {
    insert (t) {
      if (closed) throw new Error('the task store is closed')
      dirty.set(t.id, { task: t, isNew: true })
      schedule()
    },
    update (id, patch, soon) {
      const cur = get(id)
      if (!cur) return undefined
      const next = { ...cur, ...patch }
      dirty.set(id, { task: next, isNew: dirty.get(id)?.isNew ?? false })
      if (soon) scheduleSoon()
      else schedule()
      return next
    },
    get,
    committed,
    list () { sync(); return all.all().map(parse) },
    count () { sync(); return total.get() as number },
    withStatus (...s) {
      sync()
      return db.prepare(`SELECT data FROM tasks WHERE status IN (${s.map(() => '?').join(',')}) ORDER BY ctime, rowid`).all(...s).map(parse)
    },
    endedBefore (t) { sync(); return ended.all(t).map(parse) },
    ids () { return new Set([...idList.all() as string[], ...dirty.keys()]) },
    pending () { return [...dirty.values()].filter((d) => !d.removed).map((d) => d.task) },
    remove (id) {
      const d = dirty.get(id)
      if (d?.isNew) { dirty.delete(id); return }
      const t = get(id)
      if (!t) return
      dirty.set(id, { task: t, isNew: false, removed: true })
      schedule()
    },
    failure: () => failing,
    flushed () {
      if (!dirty.size) return Promise.resolve()
      return new Promise((resolve, reject) => waiters.push({ resolve, reject }))
    },
    events,
    close () {
      if (closed) return
      if (dirty.size) flush()
      clearTimeout(soonTimer)
      clearInterval(retry)
      if (dirty.size) log(`store: ${dirty.size} change(s) of tasks could not be written: ${failing?.message}`)
      closed = true
      db.close()
    },
  }
}
