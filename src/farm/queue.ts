/**
 * The farm queue of one node: jobs (a G-code file, a group or a printer, a number of copies) kept
 * in farm.db with their file, and a dispatcher that hands each copy to the first printer of the
 * job's group that is idle, on this node or another one of the LAN.
 *
 * A copy goes through: queued → starting (a printer is claimed: its node holds it for this copy
 * alone) → printing (the copy is a print task on the printer's node) → complete, failed or
 * cancelled. A refused claim leaves the copy queued for the next printer. A copy whose task
 * could not be confirmed stays `starting` until the printer's node says what became of the claim
 * (a task, or nothing), so that no copy is printed twice. A failed copy is not printed again: its
 * printer is in `error` until cleared, and the copy is shown failed.
 *
 * The queue is looked at when a printer of this node changes (a clear, a print that ends), when a
 * peer's record changes, when a job comes, and every few seconds.
 */
import { copyFileSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { EventEmitter } from 'node:events'
import { TaskError } from '../node/errors.js'
import type { FarmDb } from './db.js'
import type { FarmPrinters } from './printers.js'
import { Refused, type RemoteFarm } from './remote.js'
import type { Copy, CopyStatus, Job, JobView } from './views.js'

export type { Copy, CopyStatus, Job, JobView } from './views.js'
const ENDED = new Set<CopyStatus>(['complete', 'failed', 'cancelled'])

/** A printer of another node, as its mDNS record shows it. */
export interface RemotePrinter { name: string; state: string; groups?: string[] }
export interface RemoteNode { id: string; name: string; url: string; printers: RemotePrinter[] }

export interface NewJob { tmpPath: string; name: string; group?: string; printer?: string; copies: number; client: string }

export interface FarmQueue {
  add (job: NewJob): JobView
  /** throws (TaskError 'invalid') unless a printer of the group, or the printer, is known here or on a peer */
  check (to: { group?: string, printer?: string }): void
  list (group?: string): JobView[]
  get (id: string): JobView
  remove (id: string): JobView
  move (id: string, to: number): JobView[]
  pause (group?: string): string[]
  resume (group?: string): string[]
  /** the groups (or `*`) whose jobs wait */
  paused (): string[]
  /** look at the queue now (soon, once) */
  kick (): void
  /** resolves once a look at the queue that was asked for is done */
  settled (): Promise<void>
  events: EventEmitter
  close (): Promise<void>
}

export interface QueueConfig {
  dataDir: string
  nodeId: string
  nodeName: string
  /** how often the queue and the copies being printed are looked at (default 3 s) */
  everyMs?: number
  retentionHours?: number
}

export interface QueueDeps {
  db: FarmDb
  printers: FarmPrinters
  /** the other nodes of the LAN with their printers (none without mDNS) */
  peers: () => RemoteNode[]
  remote: RemoteFarm
  /** a print task on a printer of this node, naming the claim; resolves with its id (a copy of the file is taken) */
  submitLocal: (printer: string, claim: string, file: string, name: string) => Promise<string>
  /** a print task of this node, undefined when there is none */
  localTask: (id: string) => { status: string; error?: string } | undefined
  log: (line: string) => void
}

const ALL = '*'

const newJobId = () => `j${Math.floor(Date.now() / 1000)}-${String(Math.floor(Math.random() * 1e6)).padStart(6, '0')}`
export const JOB_ID = /^j\d{1,12}-\d{6}$/

/** Where a copy could go now: a printer of this node or of a peer. */
interface Place { local: boolean; nodeId: string; node: string; url: string; printer: string }

export function createFarmQueue (config: QueueConfig, deps: QueueDeps): FarmQueue {
  const { log, printers: farm, remote } = deps
  const jobsTable = deps.db.table<Job>('jobs')
  const pausedTable = deps.db.table<true>('paused')
  const dir = join(config.dataDir, 'farm', 'jobs')
  mkdirSync(dir, { recursive: true })
  const events = new EventEmitter()
  const jobs = new Map<string, { job: Job, pos: number }>()
  for (const r of jobsTable.all()) jobs.set(r.key, { job: r.value, pos: r.pos ?? 0 })
  const paused = new Set(pausedTable.all().map((r) => r.key))
  let closed = false
  /** jobs removed while a look at the queue was placing one of their copies */
  const removed = new Set<string>()

  const ordered = () => [...jobs.values()].sort((a, b) => a.pos - b.pos).map((x) => x.job)
  const save = (job: Job) => {
    if (removed.has(job.id)) return
    const pos = jobs.get(job.id)?.pos ?? Date.now()
    jobs.set(job.id, { job, pos })
    jobsTable.put(job.id, job, pos)
    // the file is kept while a copy may still need it (one whose task went missing prints again)
    if (job.copies.every((c) => ENDED.has(c.status))) rmSync(join(config.dataDir, job.file), { force: true })
    events.emit('job', job)
  }
  const isPaused = (job: Job) => paused.has(ALL) || (job.group !== undefined && paused.has(job.group))
  const counts = (job: Job) => {
    const c = { queued: 0, starting: 0, printing: 0, complete: 0, failed: 0, cancelled: 0 }
    for (const x of job.copies) c[x.status]++
    return c
  }
  const view = (job: Job, position: number): JobView => {
    const { file: _, ...rest } = job
    return { ...rest, node: config.nodeName, position, paused: isPaused(job), counts: counts(job) }
  }
  const views = () => ordered().map((j, i) => view(j, i + 1))
  const find = (id: string) => {
    const j = JOB_ID.test(id) ? jobs.get(id)?.job : undefined
    if (!j) throw new TaskError('unknown', `no job ${id} in the queue of ${config.nodeName}`)
    return j
  }

  /** Printers that could take a copy of `job` now, this node's first. */
  function places (job: Job): Place[] {
    const fits = (name: string, groups: string[]) => job.printer !== undefined ? name === job.printer : groups.includes(job.group!)
    const here: Place[] = farm.list().filter((p) => fits(p.name, p.groups) && farm.ready(p.name))
      .map((p) => ({ local: true, nodeId: config.nodeId, node: config.nodeName, url: '', printer: p.name }))
    const there: Place[] = deps.peers().filter((n) => n.id !== config.nodeId).flatMap((n) => n.printers
      .filter((p) => p.state === 'idle' && fits(p.name, p.groups ?? []))
      .map((p) => ({ local: false, nodeId: n.id, node: n.name, url: n.url, printer: p.name })))
    return [...here, ...there.sort((a, b) => a.node.localeCompare(b.node) || a.printer.localeCompare(b.printer))]
  }

  /** Whether a group or printer is known at all (here or on a peer), so that a typo is not queued forever. */
  function known (o: { group?: string, printer?: string }): boolean {
    const all = [...farm.list().map((p) => ({ name: p.name, groups: p.groups })), ...deps.peers().flatMap((n) => n.printers.map((p) => ({ name: p.name, groups: p.groups ?? [] })))]
    return all.some((p) => o.printer !== undefined ? p.name === o.printer : p.groups.includes(o.group!))
  }

  const update = (job: Job, copy: Copy, patch: Partial<Copy>) => {
    Object.assign(copy, patch)
    save(job)
  }

  /** A claimed copy whose task is not confirmed: the printer's node says what became of the claim. */
  async function resolveStarting (job: Job, copy: Copy): Promise<void> {
    if (!copy.printer || !copy.claim) return update(job, copy, { status: 'queued' })
    const local = copy.nodeId === config.nodeId
    let found: { pending: boolean, task?: string } | undefined
    try {
      found = local ? farm.lookup(copy.printer, copy.claim) : await remote.lookup(copy.url!, copy.printer, copy.claim)
    } catch (e) {
      log(`queue: job ${job.id} copy ${copy.n}: cannot ask ${copy.node} about its claim on ${copy.printer} yet (${(e as Error).message})`)
      return
    }
    if (found?.task) return update(job, copy, { status: 'printing', task: found.task })
    if (found?.pending) {
      if (local) farm.release(copy.printer, copy.claim)
      else await remote.release(copy.url!, copy.printer, copy.claim).catch(() => {})
    }
    log(`queue: job ${job.id} copy ${copy.n} did not reach ${copy.printer} on ${copy.node}: back in the queue`)
    update(job, copy, { status: 'queued', node: undefined, nodeId: undefined, url: undefined, printer: undefined, claim: undefined, started: undefined })
  }

  /** lines about peers that refuse or do not answer claims, said once */
  const said = new Set<string>()

  /** Claims a printer for one copy and sends it there; false when no printer took it. */
  async function place (job: Job, copy: Copy, tried: Set<string>): Promise<boolean> {
    for (const at of places(job)) {
      const key = `${at.nodeId}/${at.printer}`
      if (tried.has(key) || closed) continue
      tried.add(key)
      const info = { file: job.name, job: job.id, copy: copy.n, owner: config.nodeName }
      let claim: string
      try {
        claim = at.local ? farm.claim(at.printer, info).claim : await remote.claim(at.url, at.printer, info)
      } catch (e) {
        // a printer that is not ready says 409; anything else is worth a line (a token the peer does not take, a peer that does not answer)
        const line = `queue: cannot claim ${at.printer} on ${at.node}: ${(e as Error).message}`
        if (!(e instanceof TaskError || (e instanceof Refused && e.status === 409)) && !said.has(line)) {
          said.add(line)
          log(line)
        }
        continue
      }
      // removed (or the node stopping) while the claim was on its way: give the printer back
      if (removed.has(job.id) || closed) {
        if (at.local) farm.release(at.printer, claim)
        else await remote.release(at.url, at.printer, claim).catch(() => {})
        return true
      }
      update(job, copy, { status: 'starting', node: at.node, nodeId: at.nodeId, url: at.url || undefined, printer: at.printer, claim, started: Date.now(), error: undefined })
      const file = join(config.dataDir, job.file)
      try {
        const task = at.local ? await deps.submitLocal(at.printer, claim, file, job.name) : await remote.submit(at.url, at.printer, claim, file, job.name)
        update(job, copy, { status: 'printing', task })
        log(`queue: job ${job.id} copy ${copy.n}/${job.copies.length} (${job.name}) printing on ${at.printer} (${at.node}), task ${task}`)
        return true
      } catch (e) {
        log(`queue: job ${job.id} copy ${copy.n}: sending it to ${at.printer} on ${at.node} failed: ${(e as Error).message}`)
        await resolveStarting(job, copy)
        if (copy.status !== 'queued') return true
      }
    }
    return false
  }

  /** Where the copies being printed stand: those on this node, and with `others` those on other nodes. */
  async function watch (others: boolean): Promise<void> {
    for (const job of ordered()) {
      for (const copy of job.copies) {
        if (closed) return
        if (!others && copy.nodeId !== config.nodeId) continue
        if (copy.status === 'starting' && Date.now() - (copy.started ?? 0) > 2000) await resolveStarting(job, copy)
        if (copy.status !== 'printing' || !copy.task) continue
        let t: { status: string, error?: string } | undefined
        try {
          t = copy.nodeId === config.nodeId ? deps.localTask(copy.task) : await remote.task(copy.url!, copy.task)
        } catch { continue } // the node does not answer now: ask again later
        if (!t) {
          // the task was never written there: the copy did not print
          log(`queue: job ${job.id} copy ${copy.n}: task ${copy.task} is not on ${copy.node}: back in the queue`)
          update(job, copy, { status: 'queued', node: undefined, nodeId: undefined, url: undefined, printer: undefined, claim: undefined, task: undefined })
        } else if (t.status === 'complete' || t.status === 'failed' || t.status === 'cancelled') {
          update(job, copy, { status: t.status, ended: Date.now(), ...(t.error ? { error: t.error } : {}) })
          log(`queue: job ${job.id} copy ${copy.n} ${t.status} on ${copy.printer} (${copy.node})${t.error ? `: ${t.error}` : ''}`)
        }
      }
    }
  }

  let watched = 0
  let watchLater: NodeJS.Timeout | undefined
  async function pass (): Promise<void> {
    // peers' records change often (their load, a printer's state): the prints out there are asked
    // about once a second at most, and a second after a change that came sooner
    const since = Date.now() - watched
    if (since >= 1000) watched = Date.now()
    else watchLater ??= setTimeout(() => { watchLater = undefined; kick() }, 1000 - since)
    await watch(since >= 1000)
    const tried = new Set<string>()
    for (const job of ordered()) {
      if (closed) return
      if (isPaused(job) || !jobs.has(job.id)) continue
      for (const copy of job.copies) {
        if (copy.status !== 'queued') continue
        if (!await place(job, copy, tried)) break
      }
    }
    sweep()
  }

  /** jobs whose copies have all ended are kept for the retention period, then forgotten */
  function sweep () {
    const before = Date.now() - (config.retentionHours ?? 24) * 3600e3
    for (const job of ordered()) {
      if (job.copies.every((c) => ENDED.has(c.status) && (c.ended ?? 0) < before)) {
        jobs.delete(job.id)
        jobsTable.remove(job.id)
      }
    }
  }

  let running: Promise<void> | undefined
  let again = false
  let soon: NodeJS.Immediate | undefined
  let waiters: Array<() => void> = []
  const run = () => {
    soon = undefined
    if (closed) return
    if (running) { again = true; return }
    running = (async () => {
      do {
        again = false
        try { await pass() } catch (e) { log(`queue: ${(e as Error).stack ?? e}`) }
      } while (again && !closed)
    })().finally(() => {
      running = undefined
      const w = waiters
      waiters = []
      for (const fn of w) fn()
    })
  }
  const kick = () => { if (!closed) soon ??= setImmediate(run) }
  const timer = setInterval(kick, config.everyMs ?? 3000)
  timer.unref()
  kick()

  function check (o: { group?: string, printer?: string }) {
    if (!o.group === !o.printer) throw new TaskError('invalid', 'say where to print: group=GROUP or printer=NAME')
    if (!known(o)) {
      throw new TaskError('invalid', o.group !== undefined
        ? `no printer of group ${o.group} on this node or the nodes it sees; printers join a group with --printer NAME=PORT,group=${o.group}`
        : `no printer ${o.printer} on this node or the nodes it sees (see \`rrcloud printers\`)`)
    }
  }

  return {
    check,
    add (o) {
      check(o)
      if (!(o.copies >= 1 && o.copies <= 1000 && Number.isInteger(o.copies))) throw new TaskError('invalid', 'copies must be a whole number from 1 to 1000')
      let id = newJobId()
      while (jobs.has(id)) id = newJobId()
      const path = join(dir, `${id}.gcode`)
      renameSync(o.tmpPath, path)
      const job: Job = {
        id, name: o.name, file: relative(config.dataDir, path), size: statSync(path).size,
        ...(o.group !== undefined ? { group: o.group } : { printer: o.printer }),
        ctime: Date.now() / 1000, client: o.client,
        copies: Array.from({ length: o.copies }, (_, i) => ({ n: i + 1, status: 'queued' as const })),
      }
      save(job)
      log(`queue: job ${id} ${o.name} × ${o.copies} for ${o.group !== undefined ? `group ${o.group}` : `printer ${o.printer}`} from ${o.client}`)
      kick()
      return view(job, ordered().indexOf(job) + 1)
    },
    list: (group) => views().filter((j) => group === undefined || j.group === group),
    get: (id) => { find(id); return views().find((j) => j.id === id)! },
    remove (id) {
      const job = find(id)
      const v = views().find((j) => j.id === id)!
      jobs.delete(id)
      removed.add(id)
      jobsTable.remove(id)
      rmSync(join(config.dataDir, job.file), { force: true })
      // a claim not used yet is given back; copies that print go on (cancel their tasks to stop them)
      for (const c of job.copies) {
        if (c.status !== 'starting' || !c.claim || !c.printer) continue
        if (c.nodeId === config.nodeId) farm.release(c.printer, c.claim)
        else void remote.release(c.url!, c.printer, c.claim).catch(() => {})
      }
      log(`queue: job ${id} removed`)
      events.emit('change', { change: 'removed', id })
      return v
    },
    move (id, to) {
      find(id)
      if (!(Number.isInteger(to) && to >= 1)) throw new TaskError('invalid', 'give the new position as a number from 1')
      const order = ordered().filter((j) => j.id !== id)
      order.splice(Math.min(to, order.length + 1) - 1, 0, jobs.get(id)!.job)
      order.forEach((j, i) => { jobs.set(j.id, { job: j, pos: i + 1 }); jobsTable.put(j.id, j, i + 1) })
      events.emit('change', { change: 'moved', id, to })
      kick()
      return views()
    },
    pause (group) {
      paused.add(group ?? ALL)
      pausedTable.put(group ?? ALL, true)
      log(`queue: paused ${group ? `group ${group}` : 'all jobs'}`)
      events.emit('change', { change: 'paused', ...(group ? { group } : {}) })
      return [...paused]
    },
    resume (group) {
      if (group === undefined) {
        for (const g of paused) pausedTable.remove(g)
        paused.clear()
      } else {
        paused.delete(group)
        pausedTable.remove(group)
      }
      log(`queue: resumed ${group ? `group ${group}` : 'all jobs'}`)
      events.emit('change', { change: 'resumed', ...(group ? { group } : {}) })
      kick()
      return [...paused]
    },
    paused: () => [...paused],
    kick,
    settled: () => new Promise((resolve) => {
      if (!running && !soon) return resolve()
      waiters.push(resolve)
    }),
    events,
    close () {
      if (!closed) {
        closed = true
        clearInterval(timer)
        clearTimeout(watchLater)
        if (soon) clearImmediate(soon)
      }
      return running ?? Promise.resolve()
    },
  }
}

/** Copies a file for a task of this node: the job keeps its own until every copy has gone. */
export function copyForTask (file: string, tmpDir: string): string {
  mkdirSync(tmpDir, { recursive: true })
  const tmp = join(tmpDir, `farm-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`)
  copyFileSync(file, tmp)
  return tmp
}
