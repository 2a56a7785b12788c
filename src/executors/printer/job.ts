import type { PrintOptions, PrintProgress, PrinterState } from './types.js'
import type { Temperatures } from './protocol.js'
import type { Parked } from './pause.js'

/** The bookkeeping of one print: counters, the pause/cancel flags and a way to wake the loop. */
export class Job {
  linesSent = 0
  bytesSent = 0
  totalBytes = 0
  temperaturePolls = 0
  paused = false
  cancelRequested = false
  /** the loop is waiting at a checkpoint because of a pause */
  parked = false
  nextPoll = 0
  /** the channel's resend count when the job started */
  resendBase = 0
  /** where the head was parked by a pause (park G-code configured) */
  parkedAt?: Parked
  /** the printer was stopped with M112 during the job */
  estopped = false
  /** the safety commands of a job that did not complete, once started */
  safe?: Promise<void>
  readonly startedAt = Date.now()
  private lastReport = -Infinity
  private wakeUp?: () => void
  private pausedWaiters: Array<() => void> = []
  private endIt!: () => void
  /** resolves when the job is over, however it ended */
  readonly ended = new Promise<void>((resolve) => { this.endIt = resolve })

  constructor (readonly file: string, readonly opts: PrintOptions) {}

  /** resolves on wake() or after ms (never when ms is undefined) */
  sleep (ms: number | undefined): Promise<void> {
    return new Promise((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(resolve, ms)
      this.wakeUp = () => { clearTimeout(timer); resolve() }
    })
  }

  wake (): void {
    const w = this.wakeUp
    this.wakeUp = undefined
    w?.()
  }

  /** resolves once the loop has stopped sending (or the job ended) */
  whenPaused (): Promise<void> {
    if (this.parked) return Promise.resolve()
    return new Promise((resolve) => this.pausedWaiters.push(resolve))
  }

  end (): void {
    this.notifyPaused()
    this.endIt()
  }

  notifyPaused (): void {
    const waiters = this.pausedWaiters
    this.pausedWaiters = []
    waiters.forEach((w) => w())
  }

  snapshot (state: PrinterState, resends: number, temperatures: Temperatures): PrintProgress {
    return {
      file: this.file,
      state,
      linesSent: this.linesSent,
      bytesSent: this.bytesSent,
      totalBytes: this.totalBytes,
      percent: this.totalBytes > 0 ? Math.min(100, Math.round(1000 * this.bytesSent / this.totalBytes) / 10) : 0,
      resends,
      temperaturePolls: this.temperaturePolls,
      temperatures,
      elapsedMs: Date.now() - this.startedAt,
    }
  }

  /** true when a progress report is due (throttled unless forced) */
  reportDue (force: boolean): boolean {
    const now = Date.now()
    if (!force && now - this.lastReport < (this.opts.progressIntervalMs ?? 500)) return false
    this.lastReport = now
    return true
  }
}
