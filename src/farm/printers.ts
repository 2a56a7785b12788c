/**
 * The printers of this node as the farm sees them: what each bed holds, which job it has, and
 * claims. A claim holds an idle printer for one job of a farm queue (on this node or another)
 * until that job arrives as a print task that names the claim; it is taken in one synchronous
 * step, so of many claims that race for a printer exactly one succeeds.
 *
 * States: `idle` (ready for a job), `printing` (a print runs, or a claimed job is on its way),
 * `paused`, `finished` (the last print is still on the bed: no queued job until someone clears
 * it, unless the printer has `autoclear`), `error` (the last print failed or the firmware halted:
 * no queued job until cleared), `disconnected`. What the bed holds is kept in farm.db, so a node
 * that restarts with a finished printer keeps it finished; a print cut off by a crash leaves the
 * printer in `error`.
 *
 * A print sent to the printer by name (`printrun --printer`) is the user's own decision and runs
 * when the printer is free whatever the bed holds, except while a claim holds the printer.
 */
import { EventEmitter } from 'node:events'
import { randomBytes } from 'node:crypto'
import { basename } from 'node:path'
import type { Printer, PrinterState } from '../executors/printer/printer.js'
import { formatTemperatures } from '../executors/print-run.js'
import { TaskError } from '../node/errors.js'
import { FINAL, type Task } from '../node/task.js'
import type { FarmDb } from './db.js'

import { PRINTER_NAME } from './names.js'
export { PRINTER_NAME }

export const FARM_STATES = ['idle', 'printing', 'paused', 'finished', 'error', 'disconnected'] as const
export type FarmState = typeof FARM_STATES[number]

/** What the bed holds, kept across restarts. */
type Bed = 'idle' | 'finished' | 'error'

/** The job a printer has or last had, until its bed is cleared. */
export interface PrinterJob {
  /** the print task on this node */
  task?: string
  /** the file's name as the user gave it */
  file?: string
  /** the farm job and copy it prints, and the node whose queue holds that job */
  job?: string
  copy?: number
  owner?: string
  claim?: string
  /** the print has started (a restart finds it cut off) */
  running?: boolean
}

interface Held { bed: Bed; error?: string; job?: PrinterJob; since: number }

/** What a claim asks for: the job it is for (shown with the printer). */
export interface ClaimInfo { file?: string; job?: string; copy?: number; owner?: string }

interface Claim extends ClaimInfo { id: string; printer: string; at: number; task?: string }

export interface FarmPrinterConfig { name: string; groups?: string[]; autoclear?: boolean }

/** A printer as GET /api/v1/printers shows it. */
export interface PrinterView {
  name: string
  port: string
  state: FarmState
  /** the serial connection's own state (connecting, halted, cancelling, ...) */
  connection: PrinterState
  groups: string[]
  autoclear: boolean
  /** ms since the epoch when the bed's state last changed */
  since: number
  job?: PrinterJob & { status?: string }
  progress?: { percent: number; linesSent?: number; bytesSent?: number; totalBytes?: number }
  temperatures?: string
  /** why the printer is in error */
  error?: string
}

/** The part of the task runner the farm watches. */
export interface RunnerView {
  events: EventEmitter
  list (): Task[]
  get (id: string): Task
}

export interface FarmPrinters {
  /** the farm state of a printer of this node, undefined when there is none */
  state (name: string): FarmState | undefined
  /** idle, with nothing waiting for it and no claim on it: a claim would be granted */
  ready (name: string): boolean
  list (): PrinterView[]
  get (name: string): PrinterView | undefined
  groups (name: string): string[]
  /** holds an idle printer for one job; TaskError 'conflict' when it is not ready, 'unknown' when there is no such printer */
  claim (name: string, info?: ClaimInfo): { claim: string; printer: string; expiresInMs: number }
  /** gives a claim back before it was used; false when it is not held (used, expired or unknown) */
  release (name: string, claim: string): boolean
  /** what became of a claim: still held, used by a task, or unknown (released or expired) */
  lookup (name: string, claim: string): { claim: string; printer: string; pending: boolean; task?: string } | undefined
  /** the bed is clear: a finished or failed printer is ready again */
  clear (name: string): PrinterView
  /** the runner's hook: a print with (or without) a claim is about to be stored */
  admit (t: Task, claim?: string): void
  /** 'change' (name) whenever a printer's state, job or claim changes */
  events: EventEmitter
  close (): void
}

const CLAIM_MS = 120_000
const KEEP_CLAIMS_MS = 7 * 24 * 3600e3

export function createFarmPrinters (
  config: { printers: FarmPrinterConfig[], claimMs?: number },
  deps: { db: FarmDb, printers: Map<string, Printer>, runner: RunnerView, log: (line: string) => void },
): FarmPrinters {
  const { log } = deps
  const table = deps.db.table<Held>('printers')
  const claimsTable = deps.db.table<Claim>('claims')
  const conf = new Map(config.printers.map((p) => [p.name, p]))
  const claimMs = config.claimMs ?? CLAIM_MS
  const events = new EventEmitter()
  events.setMaxListeners(0)
  const held = new Map<string, Held>()
  /** claims granted and not yet used, by printer */
  const pending = new Map<string, { claim: Claim, timer: NodeJS.Timeout }>()
  /** tasks of each printer that have not ended: id → status (and when admitted, for a record never written) */
  const active = new Map<string, Map<string, { status: string, at: number }>>()
  const changed = (name: string) => events.emit('change', name)

  const save = (name: string, h: Held) => {
    held.set(name, h)
    table.put(name, h)
  }
  const setBed = (name: string, bed: Bed, patch: Partial<Held> = {}) => {
    const h = held.get(name)!
    save(name, { ...h, ...patch, bed, since: bed === h.bed ? h.since : Date.now() })
  }

  for (const name of deps.printers.keys()) {
    const h = table.get(name) ?? { bed: 'idle', since: Date.now() }
    // a print that was running when the node went down: the part is on the bed, unfinished
    if (h.job?.running) {
      save(name, { ...h, bed: 'error', error: `the node stopped during the print of ${h.job.file ?? 'a file'}`, job: { ...h.job, running: false }, since: Date.now() })
      log(`printer ${name}: error: the node stopped during a print; clear it once the bed is clear`)
    } else held.set(name, h)
    if (h.bed !== 'idle') log(`printer ${name}: ${held.get(name)!.bed}: waits for \`rrcloud clear ${name}\``)
  }
  for (const c of claimsTable.all()) if (c.value.at < Date.now() - KEEP_CLAIMS_MS) claimsTable.remove(c.key)

  const activeOf = (name: string) => {
    let m = active.get(name)
    if (!m) active.set(name, m = new Map())
    return m
  }
  for (const t of deps.runner.list()) if (t.printer && !FINAL.has(t.status)) activeOf(t.printer).set(t.id, { status: t.status, at: Date.now() })

  const printerOf = (name: string) => {
    const p = deps.printers.get(name)
    if (!p) throw new TaskError('unknown', `no printer ${name} on this node; it has ${[...deps.printers.keys()].join(', ') || 'none'}`)
    return p
  }

  function state (name: string): FarmState | undefined {
    const p = deps.printers.get(name)
    if (!p) return undefined
    switch (p.state) {
      case 'disconnected': case 'connecting': case 'closed': return 'disconnected'
      case 'halted': return 'error'
      case 'printing': case 'cancelling': return 'printing'
      case 'paused': return 'paused'
    }
    const statuses = [...activeOf(name).values()].map((a) => a.status)
    if (statuses.includes('paused')) return 'paused'
    if (statuses.includes('busy') || pending.has(name)) return 'printing'
    return held.get(name)!.bed
  }

  const ready = (name: string) => state(name) === 'idle' && activeOf(name).size === 0 && !pending.has(name)

  // the runner's tasks: a print that starts is the printer's job; how it ends is what the bed holds
  const onTask = (t: Task) => {
    const name = t.printer
    if (!name || !held.has(name)) return
    const mine = activeOf(name)
    const h = held.get(name)!
    if (!FINAL.has(t.status)) {
      const before = mine.get(t.id)?.status
      mine.set(t.id, { status: t.status, at: Date.now() })
      if ((t.status === 'busy' || t.status === 'paused') && !(h.job?.task === t.id && h.job.running)) {
        const job = h.job?.task === t.id ? h.job : { task: t.id, file: t.in[0] ? basename(t.in[0].path) : undefined }
        save(name, { ...h, job: { ...job, running: true } })
      }
      // progress comes often: only a change of status is a change of the printer
      if (before !== t.status) changed(name)
      return
    }
    mine.delete(t.id)
    // a claimed job cancelled before it started leaves the bed as it was
    if (h.job?.task === t.id && !h.job.running) save(name, { ...h, job: undefined })
    if (h.job?.task === t.id && h.job.running) {
      const job = { ...h.job, running: false }
      const auto = conf.get(name)?.autoclear === true
      if (t.status === 'failed') {
        setBed(name, 'error', { job, error: t.error ?? 'the print failed' })
        log(`printer ${name}: error: ${t.error ?? 'the print failed'}; it takes no queued job until cleared (\`rrcloud clear ${name}\`)`)
      } else if (auto) {
        setBed(name, 'idle', { job: undefined, error: undefined })
      } else {
        setBed(name, 'finished', { job, error: undefined })
        log(`printer ${name}: finished ${job.file ?? ''}: the bed holds the print; \`rrcloud clear ${name}\` once it is removed`)
      }
    }
    changed(name)
  }
  deps.runner.events.on('task', onTask)

  // the firmware halted (M112, kill(), thermal runaway): no job until someone has looked
  const listeners: Array<[Printer, (s: PrinterState) => void]> = []
  for (const [name, p] of deps.printers) {
    const onState = (s: PrinterState) => {
      if (s === 'halted' && held.get(name)!.bed !== 'error') setBed(name, 'error', { error: p.lastError ?? 'the firmware halted' })
      changed(name)
    }
    p.on('state', onState)
    listeners.push([p, onState])
  }

  // a task that was admitted but whose record could not be written leaves no event: forget it
  const sweeper = setInterval(() => {
    for (const [name, m] of active) {
      for (const [id, a] of m) {
        if (Date.now() - a.at < 5000) continue
        try { deps.runner.get(id) } catch { m.delete(id); changed(name) }
      }
    }
  }, 5000)
  sweeper.unref()

  function view (name: string): PrinterView {
    const p = deps.printers.get(name)!
    const h = held.get(name)!
    const s = state(name)!
    const claim = pending.get(name)?.claim
    let job: PrinterView['job'] = claim ? { file: claim.file, job: claim.job, copy: claim.copy, owner: claim.owner, claim: claim.id } : h.job
    let progress: PrinterView['progress']
    if (job?.task) {
      try {
        const t = deps.runner.get(job.task)
        job = { ...job, status: t.status }
        if (t.percent !== undefined) progress = { percent: t.percent, linesSent: t.linesSent, bytesSent: t.bytesSent, totalBytes: t.totalBytes }
      } catch {}
    }
    if (!job) {
      // a print sent by name that waits or runs without being the bed's job yet
      const [id] = [...activeOf(name).keys()]
      if (id) job = { task: id }
    }
    return {
      name,
      port: p.path,
      state: s,
      connection: p.state,
      groups: conf.get(name)?.groups ?? [],
      autoclear: conf.get(name)?.autoclear === true,
      since: h.since,
      ...(job ? { job } : {}),
      ...(progress ? { progress } : {}),
      ...(Object.keys(p.temperatures).length ? { temperatures: formatTemperatures(p.temperatures) } : {}),
      ...(s === 'error' ? { error: h.error ?? p.lastError } : {}),
    }
  }

  return {
    state,
    ready: (name) => held.has(name) && ready(name),
    list: () => [...deps.printers.keys()].map(view),
    get: (name) => held.has(name) ? view(name) : undefined,
    groups: (name) => conf.get(name)?.groups ?? [],
    claim (name, info = {}) {
      printerOf(name)
      if (!ready(name)) {
        const s = state(name)
        const why = pending.has(name) ? 'claimed for another job'
          : activeOf(name).size ? 'has a print waiting or running'
          : s === 'finished' ? 'finished: its bed holds the last print until it is cleared'
          : s === 'error' ? `in error (${held.get(name)!.error ?? deps.printers.get(name)!.lastError ?? 'see the node\'s log'}) until it is cleared`
          : s
        throw new TaskError('conflict', `printer ${name} is not ready: ${why}`, { state: s })
      }
      const claim: Claim = { id: randomBytes(12).toString('base64url'), printer: name, at: Date.now(), ...info }
      const timer = setTimeout(() => {
        if (pending.get(name)?.claim.id !== claim.id) return
        pending.delete(name)
        log(`printer ${name}: claim for ${claim.job ?? 'a job'} expired unused`)
        changed(name)
      }, claimMs)
      timer.unref()
      pending.set(name, { claim, timer })
      changed(name)
      return { claim: claim.id, printer: name, expiresInMs: claimMs }
    },
    release (name, id) {
      const p = pending.get(name)
      if (!p || p.claim.id !== id) return false
      clearTimeout(p.timer)
      pending.delete(name)
      changed(name)
      return true
    },
    lookup (name, id) {
      const p = pending.get(name)
      if (p?.claim.id === id) return { claim: id, printer: name, pending: true }
      const c = claimsTable.get(id)
      if (c && c.printer === name) return { claim: id, printer: name, pending: false, task: c.task }
      return undefined
    },
    clear (name) {
      printerOf(name)
      const s = state(name)
      if (s === 'printing' || s === 'paused') throw new TaskError('conflict', `printer ${name} is ${s}; it can be cleared once its print has ended (cancel it with \`rrcloud cancel TASK\`)`, { state: s })
      if (held.get(name)!.bed !== 'idle') log(`printer ${name}: cleared`)
      setBed(name, 'idle', { job: undefined, error: undefined })
      changed(name)
      return view(name)
    },
    admit (t, claim) {
      const name = t.printer!
      if (!held.has(name)) return
      const p = pending.get(name)
      if (claim !== undefined) {
        if (!p || p.claim.id !== claim) {
          throw new TaskError('conflict', `printer ${name} holds no claim ${claim}: it expired or was given back; claim the printer again`)
        }
        clearTimeout(p.timer)
        pending.delete(name)
        const used = { ...p.claim, task: t.id }
        claimsTable.put(used.id, used)
        save(name, { ...held.get(name)!, job: { task: t.id, file: used.file, job: used.job, copy: used.copy, owner: used.owner, claim: used.id } })
      } else if (p) {
        throw new TaskError('conflict', `printer ${name} is claimed for ${p.claim.job ? `job ${p.claim.job}` : 'a job'} of the farm queue; queue the print with \`rrcloud print --printer ${name}\``)
      }
      activeOf(name).set(t.id, { status: 'queued', at: Date.now() })
      changed(name)
    },
    events,
    close () {
      clearInterval(sweeper)
      deps.runner.events.off('task', onTask)
      for (const [p, fn] of listeners) p.off('state', fn)
      for (const { timer } of pending.values()) clearTimeout(timer)
      pending.clear()
    },
  }
}
