import debug from 'debug'
import { numberedLine } from './gcode.js'
import { parseReply, type Reply, type Temperatures } from './protocol.js'
import { PrinterError } from './errors.js'
import type { Link } from './serial.js'

const log = debug('rrcloud:printer:channel')

export interface ChannelOptions {
  name: string
  /** silence (no line at all) while an `ok` is due before M105 is sent to provoke one; twice fails */
  idleTimeoutMs: number
  /** how long an `Error:` may wait for its `Resend:` before it counts as a firmware failure */
  errorGraceMs: number
  /** how long to wait for the `ok` of an out-of-band command (M108, M105 nudge) */
  extraOkMs: number
  onTemperatures (t: Temperatures): void
  /** a fatal firmware report or a reset, also when no command is waiting */
  onFailure (err: PrinterError): void
}

interface Waiter {
  resolve (resend: number | undefined): void
  reject (err: PrinterError): void
}

const HISTORY = 64

/**
 * The numbered-line protocol over one link: line numbers and checksums, one line in flight
 * waiting for its `ok`, resends, out-of-band commands and firmware errors.
 *
 * One line per `ok` is deliberate. Marlin throws away its whole receive buffer when it rejects a
 * line (GCodeQueue::gcode_line_error) and runs an unnumbered line without any check, so with
 * several lines in flight a resend can lose lines or run the tail of a cut line as a command.
 */
export class Channel {
  temperatures: Temperatures = {}
  resends = 0
  /** what listens to replies besides the protocol (the connect handshake) */
  tap?: (r: Reply) => void

  private nextN = 1
  private readonly history = new Map<number, string>()
  private waiter?: Waiter
  private inFlightCommand?: string
  private resendRequest?: number
  private extraOks = 0
  private extraWaiter?: () => void
  private pendingError?: string
  private errorTimer?: NodeJS.Timeout
  private readonly idleTimer: NodeJS.Timeout
  private nudged = false
  private abandonBelow = -Infinity
  private failure?: PrinterError

  constructor (private readonly link: Link, private readonly o: ChannelOptions) {
    this.idleTimer = setTimeout(() => this.onIdle(), o.idleTimeoutMs)
    this.idleTimer.unref()
  }

  /** why the channel stopped working, if it did */
  get failed (): PrinterError | undefined { return this.failure }

  /** the command waiting for its `ok`, if any */
  get inFlight (): string | undefined { return this.inFlightCommand }

  handleLine (line: string): void {
    this.idleTimer.refresh()
    this.nudged = false
    if (!line.trim()) return
    const r = parseReply(line)
    log('%s < %s', this.o.name, line)
    if (this.pendingError !== undefined && r.kind !== 'resend') {
      const extra = r.kind === 'error' || r.kind === 'fatal' ? `; ${r.message}` : ''
      this.fatal(new PrinterError('firmware-error', `firmware error: ${this.pendingError}${extra}`))
      return
    }
    this.tap?.(r)
    switch (r.kind) {
      case 'ok': {
        if (r.temperatures) this.setTemperatures(r.temperatures)
        const waiter = this.waiter
        if (waiter) {
          const resend = this.resendRequest
          this.waiter = undefined
          this.resendRequest = undefined
          waiter.resolve(resend)
        } else if (this.extraOks > 0) {
          this.extraOks--
          this.extraWaiter?.()
        } else log('%s: ok nobody waited for', this.o.name)
        break
      }
      case 'resend':
        this.resendRequest = r.line
        this.clearPendingError()
        break
      case 'error':
        this.pendingError = r.message
        this.errorTimer = setTimeout(() => {
          this.fatal(new PrinterError('firmware-error', `firmware error: ${this.pendingError}`))
        }, this.o.errorGraceMs)
        break
      case 'fatal':
        this.fatal(new PrinterError('firmware-error', `firmware halted: ${r.message}`))
        break
      case 'temperatures':
        this.setTemperatures(r.temperatures)
        break
      case 'start':
        // the board reset itself (power, watchdog): whatever it had of the job is gone
        if (this.waiter) this.fatal(new PrinterError('firmware-error', 'the printer restarted during the job'))
        break
      default:
    }
  }

  /**
   * Sends one command as the next numbered line and resolves on its `ok`, re-sending from
   * wherever the firmware asks. Rejects with the channel's failure (disconnect, firmware error).
   */
  async transmit (command: string): Promise<void> {
    await this.settleExtras()
    this.throwIfFailed()
    const n = this.nextN++
    this.remember(n, numberedLine(n, command))
    let cur = n
    while (cur <= n) {
      const resend = await this.exchange(cur)
      if (resend === undefined) { cur++; continue }
      this.resends++
      if (n < this.abandonBelow) {
        // cancelled: the firmware is told nothing more of the job, the next command takes its number
        this.nextN = resend
        return
      }
      if (resend > n + 1 || (resend <= n && !this.history.has(resend))) {
        throw this.fatal(new PrinterError('protocol', `the firmware asked for line ${resend}; the host is at line ${n}`))
      }
      cur = resend
    }
  }

  /** `N0 M110 N0`: the firmware and the host start counting lines again from here. */
  async resetNumbering (): Promise<void> {
    await this.settleExtras()
    this.history.clear()
    this.remember(0, numberedLine(0, 'M110 N0'))
    // a rejected M110 is answered with a resend of the firmware's old count: send it again
    for (let attempt = 0; ; attempt++) {
      const resend = await this.exchange(0)
      if (resend === undefined) break
      if (attempt >= 5) throw this.fatal(new PrinterError('protocol', 'the firmware keeps rejecting M110 (line number reset)'))
    }
    this.nextN = 1
    this.abandonBelow = -Infinity
  }

  /** Writes a command without number or checksum, outside the flow control (M108, probes). */
  sendOutOfBand (command: string, expectOk = true): void {
    if (this.failure) return
    log('%s > %s (out of band)', this.o.name, command)
    if (expectOk) this.extraOks++
    this.link.write(command)
  }

  /** Lines already queued for the job are dropped at the next resend instead of being re-sent. */
  abandon (): void {
    this.abandonBelow = this.nextN
  }

  /** Forgets a firmware error reported before (for a new job); a lost link stays failed. */
  recover (): void {
    if (this.failure?.code === 'disconnected' || this.failure?.code === 'closed') return
    this.failure = undefined
    this.clearPendingError()
    this.resendRequest = undefined
  }

  /** Fails whatever waits and every later command with this error. */
  fail (err: PrinterError): PrinterError {
    if (this.failure) return this.failure
    this.failure = err
    this.clearPendingError()
    const waiter = this.waiter
    this.waiter = undefined
    this.inFlightCommand = undefined
    waiter?.reject(err)
    this.extraWaiter?.()
    return err
  }

  close (): void {
    clearTimeout(this.idleTimer)
    this.fail(new PrinterError('closed', `printer ${this.o.name} was closed`))
  }

  private fatal (err: PrinterError): PrinterError {
    const first = !this.failure
    const result = this.fail(err)
    if (first) this.o.onFailure(result)
    return result
  }

  private exchange (n: number): Promise<number | undefined> {
    this.throwIfFailed()
    const line = this.history.get(n)!
    this.inFlightCommand = line.slice(line.indexOf(' ') + 1, line.lastIndexOf('*'))
    this.idleTimer.refresh()
    return new Promise<number | undefined>((resolve, reject) => {
      this.waiter = {
        resolve: (resend) => { this.inFlightCommand = undefined; resolve(resend) },
        reject,
      }
      this.link.write(line)
    })
  }

  // the `ok` of an out-of-band command comes after the one of the line in flight when it was sent
  private async settleExtras (): Promise<void> {
    while (this.extraOks > 0 && !this.failure) {
      const arrived = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), this.o.extraOkMs)
        this.extraWaiter = () => { clearTimeout(timer); resolve(true) }
      })
      this.extraWaiter = undefined
      if (!arrived) {
        log('%s: gave up waiting for %d out-of-band ok', this.o.name, this.extraOks)
        this.extraOks = 0
      }
    }
  }

  private onIdle (): void {
    this.idleTimer.refresh()
    if (!this.waiter || this.failure) return
    if (!this.nudged) {
      // the ok may have been garbled on the wire: M105 provokes another one
      this.nudged = true
      this.sendOutOfBand('M105')
      return
    }
    const secs = Math.round(2 * this.o.idleTimeoutMs / 1000)
    this.fatal(new PrinterError('timeout', `printer ${this.o.name} stopped answering (nothing for ${secs} s)`))
  }

  private remember (n: number, line: string): void {
    this.history.set(n, line)
    this.history.delete(n - HISTORY)
  }

  private setTemperatures (t: Temperatures): void {
    this.temperatures = { ...this.temperatures, ...t }
    this.o.onTemperatures(this.temperatures)
  }

  private clearPendingError (): void {
    clearTimeout(this.errorTimer)
    this.pendingError = undefined
  }

  private throwIfFailed (): void {
    if (this.failure) throw this.failure
  }
}
