import type { Temperatures } from './protocol.js'

export type PrinterState = 'disconnected' | 'connecting' | 'idle' | 'printing' | 'paused' | 'cancelling' | 'closed'

/** Where a print stands; passed to onProgress and the `progress` event, and kept in `printer.progress`. */
export interface PrintProgress {
  file: string
  state: PrinterState
  /** commands of the file acknowledged by the firmware (temperature polls not counted) */
  linesSent: number
  /** bytes of the file consumed up to the last acknowledged command */
  bytesSent: number
  totalBytes: number
  /** bytesSent / totalBytes, 0..100 */
  percent: number
  /** lines the firmware asked to have sent again */
  resends: number
  temperaturePolls: number
  temperatures: Temperatures
  elapsedMs: number
}

export interface PrintResult extends Omit<PrintProgress, 'state'> {
  status: 'complete' | 'cancelled'
  linesPerSecond: number
}

export interface PrintOptions {
  onProgress? (progress: PrintProgress): void
  /** at most one progress report per this many ms, besides the first and the last (default 500) */
  progressIntervalMs?: number
}

/** The bookkeeping of one print: counters, the pause/cancel flags and a way to wake the loop. */
export class Job {
  linesSent = 0
  bytesSent = 0
  totalBytes = 0
  temperaturePolls = 0
  paused = false
  cancelRequested = false
  nextPoll = 0
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
