import { lstatSync, mkdirSync, readdirSync, realpathSync, rmSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { basename, join, sep } from 'node:path'
import { EventEmitter } from 'node:events'
import PQueue from 'p-queue'
import type { ResolvedService } from '../executors/services.js'
import type { Executor, Execution } from '../executors/executor.js'
import { createProcessExecutor } from '../executors/process-executor.js'
import { createPrintExecutor } from '../executors/print-executor.js'
import type { Limits, Sandbox } from '../executors/sandbox.js'
import type { Printer } from '../executors/printer/printer.js'
import { StoreUnwritable, TaskError } from './errors.js'
import type { Store } from './store.js'
import { FINAL, newTaskId, type Task, type TaskInput } from './task.js'
import { createBlobStore, hashFile, hashSmallFile, type BlobStore } from './blobs.js'
import { cacheable, cacheKey, ID_PLACEHOLDER } from './cache.js'
import { autoName, digestsOf, taskFolder } from './task-folder.js'
import { createAdmission, type Pass } from './admission.js'

export interface RunnerConfig {
  dataDir: string
  serverName: string
  slots: number
  timeoutSec: number
  retentionHours: number
  /** the services this node offers (available ones only) */
  services: ResolvedService[]
  /** printers attached to this node, by name; each runs one job at a time */
  printers?: Map<string, Printer>
  graceMs?: number
  /** tasks that may wait for a slot; beyond, a new task waits for a place (`admission`) or is refused (default 1000) */
  maxQueue?: number
  /** requests that may wait for a place in a full queue at once; beyond, they are refused at once (default 1024) */
  maxWaiting?: number
  /** CPU niceness of the tools (0: as the node's) */
  nice?: number
  /** how tools run (src/executors/sandbox.ts) */
  sandbox: Sandbox
  /** limits of every tool; a descriptor may set lower ones */
  limits?: Limits
}

export interface RunnerDeps {
  store: Store
  /** one line per task event */
  log: (line: string) => void
  /** called once when a task ends, with the notifier URL already expanded */
  notify: (url: string) => void
  /** the node's content store and result cache (none: the runner keeps nothing beyond its tasks) */
  blobs?: BlobStore
  /**
   * a print about to be stored, with the farm's claim on its printer if it came with one: throws
   * (TaskError) to refuse it. Called just before the record is written, in the same turn.
   */
  admit?: (t: Task, claim?: string) => void
}

/**
 * An input as accepted by the HTTP layer: an uploaded file on disk, content sent as a string, or
 * (with neither) a file of the node's content store, named by its digest.
 */
export interface IncomingInput {
  tmpPath?: string
  content?: string
  /** known for uploads (hashed as they came in) and for files named by digest */
  sha256?: string
  size?: number
  ext: string
  prearg?: string
  /** its path in the task's folder, when the client gave one (checked: see tree.ts) */
  name?: string
}

/** Another file of the task's folder: an upload on disk, or a file of the content store. */
export interface IncomingFile { name: string; sha256: string; tmpPath?: string; size?: number }

export interface Submission {
  service: string
  inputs: IncomingInput[]
  /** the other files of the task's folder (a model's includes and imports) */
  files?: IncomingFile[]
  client: string
  notifier?: string
  /** a printer of this node, by name or port path (printer services only) */
  printer?: string
  /** the farm queue's claim on that printer (POST /api/v1/printers/:name/claim) */
  claim?: string
  /** false: run the tool even when the result of the same work is known (it is recorded all the same) */
  cache?: boolean
}

/** What the node has for a task not sent yet. */
export interface Lookup {
  /** the result is known: the task would complete at once */
  hit: boolean
  key: string
  /** digests of the task's files this node does not hold */
  missing: string[]
}

export interface TaskRunner {
  /**
   * stores and queues a task (or completes it from the result cache); resolves once its record is
   * committed. With a pass (`admission`), the task takes the place the pass holds.
   */
  submit (s: Submission, pass?: Pass): Promise<Task>
  /** a place in the queue for a task about to be read: at once, or once one frees within `ms` (rejects with a `full` TaskError after) */
  admission (ms: number, signal?: AbortSignal): Promise<Pass>
  /** whether a task's result is known here, and which of its files are not */
  lookup (s: Submission): Lookup
  get (id: string): Task
  list (): Task[]
  cancel (id: string): Task
  pause (id: string): Task
  resume (id: string): Task
  stats (): { slots: number; running: number; queued: number }
  /** why there is no room for one more waiting task (--max-queue), or undefined: such tasks get 503 */
  full (): string | undefined
  /** a place in the queue now, if one is free and no request waits for one */
  admitNow (): Pass | undefined
  /** resolves when no task is queued or running (and their records are written, their results recorded) */
  idle (): Promise<void>
  /** resolves once every change so far is committed; rejects with StoreUnwritable if it cannot be now */
  flushed (): Promise<void>
  /** removes ended tasks older than the retention period, and files of no task as old; returns how many tasks */
  sweep (now?: number): number
  /** 'task' (Task) on every change of a task, once committed; 'stats' when running or queued counts change */
  events: EventEmitter
  close (): Promise<void>
}

/** outputs up to this size are hashed as their task ends, in the event loop (~0.2 ms for 64 KiB) */
const SMALL_OUTPUT = 64 << 10

export const taskDirs = (dataDir: string) => ({
  in: join(dataDir, 'tasks', 'in'),
  out: join(dataDir, 'tasks', 'out'),
  log: join(dataDir, 'tasks', 'log'),
  tmp: join(dataDir, 'tasks', 'tmp'),
  /** one folder per running task: the tool's working directory, its outputs until it completes */
  run: join(dataDir, 'tasks', 'run'),
})

/**
 * A tool whose node died keeps running; stop it at restart, but only if the pid still
 * belongs to a process working in our data folder (pids are reused).
 */
function killOrphan (pid: number, runDir: string) {
  try {
    if (!realpathSync(`/proc/${pid}/cwd`).startsWith(realpathSync(runDir) + sep)) return
    process.kill(-pid, 'SIGCONT')
    process.kill(-pid, 'SIGKILL')
  } catch {}
}

export function createTaskRunner (config: RunnerConfig, deps: RunnerDeps): TaskRunner {
  const { store, log } = deps
  const blobs = deps.blobs ?? createBlobStore({ dataDir: config.dataDir, maxBytes: 0 })
  const dirs = taskDirs(config.dataDir)
  Object.values(dirs).forEach((d) => mkdirSync(d, { recursive: true }))
  const services = new Map(config.services.map((s) => [s.name, s]))
  const queue = new PQueue({ concurrency: config.slots })
  const printers = config.printers ?? new Map<string, Printer>()
  // a printer is not a CPU slot: each has a line of its own, one job at a time
  const printQueues = new Map([...printers.keys()].map((n) => [n, new PQueue({ concurrency: 1 })]))
  const running = new Map<string, Execution>()
  let closing = false
  const printing = () => [...running.keys()].filter((id) => store.get(id)?.printer).length

  const events = new EventEmitter()
  events.setMaxListeners(0)
  // 'stats' goes out once the code that changed a count is done (a task is queued or started a few
  // statements, or a promise, after its status is set): listeners read the counts as they are, not
  // one behind, and a burst of changes in one turn makes one event
  let statsDue = false
  const statsChanged = () => {
    if (statsDue) return
    statsDue = true
    setImmediate(() => { statsDue = false; events.emit('stats') })
  }
  const set = (id: string, patch: Partial<Task>, soon?: boolean) => {
    let t = store.update(id, patch, soon)!
    const e = store.failure()
    if (e && (patch.status === 'complete' || patch.status === 'failed')) t = spoil(t, e)
    if (patch.status) statsChanged()
    return t
  }
  /**
   * A task that completes or fails while its record cannot be written ends failed: its end is
   * recorded once writes work again, and what it wrote may be cut short, so its output is not
   * kept. A cancelled task stays cancelled.
   */
  const spoil = (t: Task, e: Error): Task => {
    if (FINAL.has(store.committed(t.id)?.status ?? 'queued')) return t
    if (t.out) rmSync(join(config.dataDir, t.out), { force: true, recursive: true })
    return store.update(t.id, { status: 'failed', error: `disk full: ${e.message}`, outSha256: undefined, outSize: undefined })!
  }
  store.events.on('unwritable', (e: Error) => {
    for (const t of store.pending()) if (t.status === 'complete' || t.status === 'failed') spoil(t, e)
  })
  /** tasks that ended: their end is told (log line, notifier) once it is committed */
  const ending = new Set<string>()
  const end = (t: Task) => { ending.add(t.id) }
  // what the node shows is what the database holds: changes go out once committed
  store.events.on('task', (t: Task) => {
    events.emit('task', t)
    if (!FINAL.has(t.status) || !ending.delete(t.id)) return
    log(`task ${t.id} ${t.status}${t.error ? `: ${t.error}` : ''}${t.cached ? ` from the cache for ${t.client}: the result of task ${t.cached}` : ''}`)
    if (t.notifier) {
      deps.notify(t.notifier.replaceAll('$id', t.id).replaceAll('$myip', t.client))
    }
    if (t.status === 'complete' && t.out && !t.cached && blobs.enabled) remember(t)
  })

  /** results being hashed into the cache, after their task completed */
  const recording = new Set<Promise<void>>()
  /**
   * The digest of an output the store would take, read at once when it is small: then its end and
   * its digest are one change of the record. Larger ones are hashed after, without holding up the
   * task (`remember`); so is one that cannot be read here.
   */
  function smallDigest (path: string): { sha256: string, size: number } | undefined {
    try {
      const d = hashSmallFile(path, SMALL_OUTPUT)
      return d && d.size <= blobs.limit ? d : undefined
    } catch {
      return undefined
    }
  }
  /** A completed task's output enters the store (and the result cache, with its key), without holding up the task. */
  function remember (t: Task) {
    const path = join(config.dataDir, t.out!)
    if (t.outSha256 !== undefined && t.outSize !== undefined) {
      // hashed as it ended: the record names the digest already
      const { outSha256: sha256, outSize: size } = t
      let kept = false
      try {
        blobs.add(path, sha256, size)
        if (t.key) blobs.record(t.key, sha256, t.id)
        kept = blobs.size(sha256) !== undefined
      } catch (e) {
        log(`task ${t.id}: its result is not cached: ${(e as Error).message}`)
      }
      // not in the store after all (a full disk): the record does not name it
      if (!kept && store.get(t.id)) set(t.id, { outSha256: undefined, outSize: undefined })
      return
    }
    const p: Promise<void> = hashFile(path)
      .then(({ sha256, size }) => {
        blobs.add(path, sha256, size)
        if (t.key) blobs.record(t.key, sha256, t.id)
        // by its digest, the output can go from this node's store to another's (the next stage of a pipeline)
        if (blobs.size(sha256) !== undefined && store.get(t.id)) set(t.id, { outSha256: sha256, outSize: size })
      })
      .catch((e) => log(`task ${t.id}: its result is not cached: ${(e as Error).message}`))
      .finally(() => recording.delete(p))
    recording.add(p)
  }

  // one executor per service that runs a tool, one per printer
  const processExecutors = new Map(config.services.filter((s) => s.kind === 'process' && s.exe).map((s) => [s.name, createProcessExecutor(s, {
    sandbox: config.sandbox, limits: config.limits, runRoot: dirs.run, nice: config.nice, graceMs: config.graceMs,
  })]))
  const printExecutors = new Map([...printers].map(([name, p]) => [name, createPrintExecutor(p)]))
  /** the executor of a task: its service's, or its printer's (undefined: the printer is gone) */
  const executorOf = (s: ResolvedService, t: { printer?: string }): Executor | undefined =>
    s.kind === 'printer' ? (t.printer ? printExecutors.get(t.printer) : undefined) : processExecutors.get(s.name)
  const inputsOf = (t: { in: TaskInput[] }) => t.in.map((i) => ({ host: join(config.dataDir, i.path), name: i.name ?? basename(i.path), ...(i.prearg ? { prearg: i.prearg } : {}) }))
  const filesOf = (t: { files?: TaskInput[] }) => (t.files ?? []).map((f) => ({ host: join(config.dataDir, f.path), name: f.name ?? basename(f.path) }))

  async function execute (id: string): Promise<void> {
    const t = store.get(id)
    if (!t || t.status !== 'queued' || closing) return
    const s = services.get(t.service)
    if (!s || (s.kind === 'process' && !s.exe)) {
      end(set(id, { status: 'failed', etime: Date.now() / 1000, error: `service ${t.service} is no longer offered here` }))
      return
    }
    // --timeout is for tools; a print takes as long as it takes, unless its descriptor says otherwise
    const timeoutSec = s.kind === 'printer' ? s.timeout : Math.min(config.timeoutSec, s.timeout ?? Infinity)
    const ex = executorOf(s, t)
    if (!ex) {
      end(set(id, { status: 'failed', etime: Date.now() / 1000, error: `printer ${t.printer} is no longer attached here` }))
      return
    }
    const h = ex.start({
      id,
      inputs: inputsOf(t),
      files: filesOf(t),
      logFile: join(dirs.log, id),
      outFile: t.out && join(config.dataDir, t.out),
      timeoutMs: timeoutSec && timeoutSec * 1000,
      onUpdate: (patch) => set(id, patch as Partial<Task>),
    })
    running.set(id, h)
    const known = h.pid
    set(id, { status: 'busy', pid: known })
    // a tool started by the spawn helper has its pid a moment later: recorded with the next change of
    // any task (under load, there is one within milliseconds), or 20 ms later
    const pid = h.started ? await h.started : known
    if (pid !== known && pid !== undefined && running.has(id)) set(id, { pid }, true)
    log(`task ${id} busy${pid ? ` pid ${pid}` : ''}`)
    const r = await h.done
    running.delete(id)
    const patch: Partial<Task> = { etime: Date.now() / 1000, status: r.status, ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}) }
    patch.error = r.error ?? (r.status === 'cancelled' ? (closing ? 'node stopped while the task was running' : 'cancelled on request') : undefined)
    // a small output is hashed now: its digest goes in the same change as the end (see `remember`)
    const digest = r.status === 'complete' && t.out && blobs.enabled ? smallDigest(join(config.dataDir, t.out)) : undefined
    if (digest) Object.assign(patch, { outSha256: digest.sha256, outSize: digest.size })
    const ended = set(id, patch)
    end(ended)
  }

  const enqueue = (t: Task) => {
    const q = (t.printer && printQueues.get(t.printer)) || queue
    q.add(() => execute(t.id)).catch((e) => log(`task ${t.id} error: ${e}`))
  }

  // a restart: what was running died with the node; what was waiting still waits
  for (const t of store.withStatus('busy', 'paused')) {
    if (t.pid) killOrphan(t.pid, dirs.run)
    end(set(t.id, { status: 'failed', etime: Date.now() / 1000, error: 'the node stopped while the task was running' }))
  }
  for (const t of store.withStatus('queued')) enqueue(t)
  // files of no task: a crash came between writing them and the record, or between removing both
  const orphans = removeOrphans(Infinity, store.ids())
  if (orphans) log(`start: removed ${orphans} file(s) of no task`)

  /** A printer by name or port path; with one printer attached, the name may be left out. */
  function choosePrinter (want?: string): Printer {
    const all = [...printers.values()]
    const list = all.map((p) => `${p.name} (${p.path})`).join(', ')
    if (!want) {
      if (all.length === 1) return all[0]
      throw new TaskError('invalid', `several printers here, say which: ${list}`, { printers: all.map((p) => p.name) })
    }
    const p = all.find((x) => x.name === want || x.path === want)
    if (!p) throw new TaskError('invalid', `no printer ${want} on this node; it has ${list || 'none'}`, { printers: all.map((x) => x.name) })
    return p
  }

  /** a task as committed: what the node shows */
  function get (id: string): Task {
    const t = store.committed(id)
    if (!t) throw new TaskError('unknown', `no task ${id}`)
    return t
  }
  /** a task with the changes not yet committed: what the runner acts on */
  function current (id: string): Task {
    const t = store.get(id)
    if (!t) throw new TaskError('unknown', `no task ${id}`)
    return t
  }

  function removeFiles (t: Task) {
    const files = [...t.in.map((i) => i.path), ...(t.files ?? []).map((f) => f.path), t.out, `tasks/log/${t.id}`].filter(Boolean) as string[]
    for (const f of files) rmSync(join(config.dataDir, f), { force: true })
    // the folder of a task whose files have paths
    rmSync(join(dirs.in, t.id), { recursive: true, force: true })
  }

  /**
   * Removes what is in the task folders, changed before `before` (ms), and belongs to none of
   * `ids`: files are named after their task (`ID-N.ext` or folder `ID` in, `ID.ext` out and
   * `.ID.ext` its output held until the task completes, `ID` log, run folder `ID`); anything in
   * tmp is an upload.
   */
  function removeOrphans (before: number, ids: Set<string>): number {
    let n = 0
    for (const dir of [dirs.in, dirs.out, dirs.log, dirs.run, dirs.tmp]) {
      let names: string[]
      try { names = readdirSync(dir) } catch { continue }
      for (const name of names) {
        const owner = dir === dirs.tmp ? undefined : /^\.?(\d{1,12}-\d{6})(?=$|[.-])/.exec(name)?.[1]
        if (owner && ids.has(owner)) continue
        try {
          const p = join(dir, name)
          if (lstatSync(p).mtimeMs >= before) continue
          rmSync(p, { recursive: true, force: true })
          n++
        } catch {}
      }
    }
    return n
  }

  const sweepEvery = Math.min(config.retentionHours * 3600e3 / 4, 600e3)
  const sweeper = setInterval(() => runner.sweep(), Math.max(sweepEvery, 1000))
  sweeper.unref()

  /** the key of a task's result: its folder as the tool sees it, inputs named after the task by a placeholder */
  const keyOf = (s: ResolvedService, sub: Submission, shas: string[]) => cacheKey(s,
    sub.inputs.map((i, n) => ({ name: i.name ?? autoName(ID_PLACEHOLDER, i, n), sha256: shas[n], ...(i.prearg ? { prearg: i.prearg } : {}) })),
    (sub.files ?? []).map((f) => ({ name: f.name, sha256: f.sha256 })))

  /** ids chosen but not yet stored */
  const reserved = new Set<string>()
  const maxQueue = config.maxQueue ?? 1000
  const fullReason = () => `full: ${queue.size} tasks wait for ${config.slots} slot(s) here (--max-queue ${maxQueue}); try another node`
  const admission = createAdmission({ maxWaiting: config.maxWaiting ?? 1024 }, { free: () => maxQueue - queue.size - reserved.size, why: fullReason })
  // a task that starts leaves a place in the queue
  queue.on('active', admission.wake)

  const runner: TaskRunner = {
    async submit (sub, pass) {
      const s = services.get(sub.service)
      if (!s) throw new TaskError('invalid', `unknown service ${sub.service}`, { services: [...services.keys()] })
      const printer = s.kind === 'printer' ? choosePrinter(sub.printer) : undefined
      // the place held for this task is its own from here (reserved below, in this same turn)
      if (!printer) admission.take(pass)
      const full = printer ? undefined : runner.full()
      if (full) throw new TaskError('full', full)
      const unwritable = store.failure()
      if (unwritable) throw new StoreUnwritable(unwritable)
      const files = sub.files ?? []
      if (printer && files.length) throw new TaskError('invalid', 'a print takes its G-code file alone, no other files')
      let id = newTaskId()
      while (reserved.has(id) || store.get(id)) id = newTaskId()
      reserved.add(id)
      const folder = taskFolder(dirs.in, id, sub, blobs)
      const { names, paths, shas } = folder
      const outPath = (out: string) => join(dirs.out, out)
      const ex = executorOf(s, { printer: printer?.name })!
      const plan = ex.plan(id, names.map((name, n) => ({ host: paths[n], name, ...(sub.inputs[n].prearg ? { prearg: sub.inputs[n].prearg } : {}) })))
      const refuse = async (e: unknown): Promise<never> => {
        reserved.delete(id)
        admission.wake()
        await folder.remove()
        throw e
      }
      try {
        await folder.fill(plan.out)
      } catch (e) {
        return refuse(e)
      }
      const { inputs, files: taskFiles } = folder.records(config.dataDir)
      // content that must not run: a G-code file that is not one, a config that names a program
      const refused = await ex.refuse(inputsOf({ in: inputs }))
      if (refused) return refuse(new TaskError('invalid', refused))
      const key = blobs.enabled && cacheable(s) && plan.out && shas.every(Boolean) ? keyOf(s, sub, shas as string[]) : undefined
      // the same work done before: the task completes now, with that task's output
      const hit = key && sub.cache !== false ? blobs.result(key) : undefined
      const cached = hit && blobs.linkTo(hit.sha256, outPath(plan.out!)) ? hit.task : undefined
      const now = Date.now() / 1000
      const task: Task = {
        id,
        service: s.name,
        status: cached ? 'complete' : 'queued',
        client: sub.client,
        server: config.serverName,
        cmd: plan.cmd,
        ctime: now,
        ...(cached ? { etime: now, exitCode: 0, cached, outSha256: hit!.sha256, outSize: blobs.size(hit!.sha256) } : {}),
        in: inputs,
        ...(taskFiles.length ? { files: taskFiles } : {}),
        out: plan.out && `tasks/out/${plan.out}`,
        ...(sub.notifier ? { notifier: sub.notifier } : {}),
        ...(printer ? { printer: printer.name } : {}),
        ...(key ? { key } : {}),
      }
      // the farm's word on a print (its claim on the printer), in the same turn as the record is stored
      if (printer) {
        try { deps.admit?.(task, sub.claim) } catch (e) { return refuse(e) }
      }
      try {
        // its end (log line, notifier) is told once committed
        if (cached) end(task)
        store.insert(task)
        // the task is accepted once its record is on disk, so that it outlives a crash
        await store.flushed()
      } catch (e) {
        ending.delete(id)
        await Promise.all([rm(join(dirs.log, id), { force: true }), plan.out ? rm(outPath(plan.out), { force: true }) : undefined])
        return refuse(e)
      } finally {
        reserved.delete(id)
      }
      // accepted: what was uploaded enters the store, as links of the task's own files
      folder.keep(log)
      statsChanged()
      if (cached) {
        blobs.hit(key!)
        admission.wake()
        return task
      }
      log(`task ${id} queued ${s.name} from ${sub.client}`)
      enqueue(task)
      // only now is its place in the CPU queue taken (or given back, for a print): not before, or
      // the place would be given to a waiting request twice
      admission.wake()
      return task
    },
    lookup (sub) {
      const s = services.get(sub.service)
      if (!s) throw new TaskError('invalid', `unknown service ${sub.service}`, { services: [...services.keys()] })
      const files = sub.files ?? []
      const shas = digestsOf(sub).map((x) => x ?? '')
      const missing = blobs.missing([...sub.inputs.filter((i) => !i.tmpPath && i.content === undefined).map((i) => i.sha256!), ...files.map((f) => f.sha256)])
      const key = keyOf(s, sub, shas)
      return { hit: cacheable(s) && Boolean(blobs.result(key)), key, missing }
    },
    get,
    list: () => store.list(),
    cancel (id) {
      const t = current(id)
      if (FINAL.has(t.status)) throw new TaskError('conflict', `task ${id} is already ${t.status}`)
      const h = running.get(id)
      if (h) {
        h.cancel()
        return current(id)
      }
      const next = set(id, { status: 'cancelled', etime: Date.now() / 1000, error: 'cancelled on request' })
      end(next)
      return next
    },
    pause (id) {
      const t = current(id)
      const h = running.get(id)
      if (t.status !== 'busy' || !h) throw new TaskError('conflict', `task ${id} is ${t.status}; only a busy task can be paused`)
      h.pause()
      log(`task ${id} paused`)
      return set(id, { status: 'paused' })
    },
    resume (id) {
      const t = current(id)
      const h = running.get(id)
      if (t.status !== 'paused' || !h) throw new TaskError('conflict', `task ${id} is ${t.status}; only a paused task can be resumed`)
      h.resume()
      log(`task ${id} resumed`)
      return set(id, { status: 'busy' })
    },
    stats: () => ({ slots: config.slots, running: running.size - printing(), queued: queue.size }),
    full: () => queue.size + reserved.size + admission.held() >= maxQueue ? fullReason() : undefined,
    admission: (ms, signal) => admission.wait(ms, signal),
    admitNow: () => admission.now(),
    idle: async () => {
      await Promise.all([queue, ...printQueues.values()].map((q) => q.onIdle()))
      // the last ends committed: their results are being recorded by then
      await store.flushed().catch(() => {})
      await Promise.all(recording)
    },
    flushed: () => store.flushed(),
    events,
    sweep (now = Date.now()) {
      const before = now - config.retentionHours * 3600e3
      const old = store.endedBefore(before / 1000)
      for (const t of old) {
        removeFiles(t)
        store.remove(t.id)
      }
      if (old.length) log(`retention: removed ${old.length} task(s) older than ${config.retentionHours} h`)
      try {
        blobs.sweep(before)
      } catch (e) {
        log(`retention: could not sweep the content store: ${(e as Error).message}`)
      }
      // a submission in progress has its uploads in tmp and its inputs under a reserved id
      const orphans = removeOrphans(before, new Set([...store.ids(), ...reserved]))
      if (orphans) log(`retention: removed ${orphans} file(s) of no task older than ${config.retentionHours} h`)
      return old.length
    },
    async close () {
      if (closing) return
      closing = true
      clearInterval(sweeper)
      admission.close()
      for (const q of [queue, ...printQueues.values()]) { q.pause(); q.clear() }
      const waits = [...running.values()].map((h) => { h.cancel(); return h.done })
      await Promise.all(waits)
      await runner.idle()
    },
  }
  return runner
}
