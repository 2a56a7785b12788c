import debug from 'debug'
import { numberedLine } from './gcode.js'
import { isLongCommand, parseReply, type Reply, type Temperatures } from './protocol.js'
import { PrinterError } from './errors.js'
import type { Link } from './serial.js'

const log = debug('rrcloud:printer:channel')

export interface ChannelOptions {
  name: string
  /** silence while the `ok` of a short command is due before M105 is sent to provoke one */
  nudgeMs: number
  /** the same for long commands (G28, M109, ...) and after `busy:`; after a nudge, silence this long fails */
  idleTimeoutMs: number
  /** how long an unclassified `Error:` may wait for its `Resend:` before it counts as a firmware failure */
  errorGraceMs: number
  /** how long to wait for the `ok` of an out-of-band command (M108) */
  extraOkMs: number
  onTemperatures (t: Temperatures): void
  /** a fatal firmware report or a reset during a command, also when no command is waiting */
  onFailure (err: PrinterError): void
  /** the firmware booted (`start`): it has forgotten line numbers, moves and temperatures; fail what waits */
  onReset? (): void
  /** a host action command from the printer (`//action:pause`, ...) */
  onAction? (action: string): void
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
  /** every `ok` received so far */
  oks = 0
  /** what listens to replies besides the protocol (the connect handshake) */
  tap?: (r: Reply) => void

  private nextN = 1
  private readonly history = new Map<number, string>()
  private waiter?: Waiter
  private inFlightCommand?: string
  private exchangeId = 0
  private resendRequest?: number
  private extraOks = 0
  private extraWaiter?: () => void
  private pendingError?: string
  private errorTimer?: NodeJS.Timeout
  private silenceTimer?: NodeJS.Timeout
  private busy = false
  private nudged = false
  /** answers to M105 nudges still to come, and the exchange the last one was sent for */
  private nudges = 0
  private nudgeFor = -1
  private captured?: string[]
  private readonly okListeners = new Set<() => void>()
  private abandonBelow = -Infinity
  private failure?: PrinterError

  constructor (private readonly link: Link, private readonly o: ChannelOptions) {}

  /** why the channel stopped working, if it did */
  get failed (): PrinterError | undefined { return this.failure }

  /** the command waiting for its `ok`, if any */
  get inFlight (): string | undefined { return this.inFlightCommand }

  handleLine (line: string): void {
    if (!line.trim()) return
    const r = parseReply(line)
    log('%s < %s', this.o.name, line)
    if (this.pendingError !== undefined && r.kind !== 'resend') {
      const extra = r.kind === 'error' || r.kind === 'fatal' ? `; ${r.message}` : ''
      this.fatal(new PrinterError('firmware-error', `firmware error: ${this.pendingError}${extra}`))
      return
    }
    // signs of life: answers always; anything at all while a long command runs (M109 reports)
    const long = this.inFlightCommand !== undefined && isLongCommand(this.inFlightCommand)
    if (long || !['temperatures', 'other', 'action'].includes(r.kind)) {
      this.nudged = false
      this.arm()
    }
    this.tap?.(r)
    this.handlers[r.kind](r as never)
  }

  /** one handler per kind of firmware message */
  private readonly handlers: { [K in Reply['kind']]: (r: Extract<Reply, { kind: K }>) => void } = {
    ok: (r) => {
      this.oks++
      this.okListeners.forEach((l) => l())
      if (r.temperatures) this.setTemperatures(r.temperatures)
      // the answer to a nudge (M105 answers with temperatures): the line's own ok came before it or was lost
      if (this.nudges > 0 && r.temperatures) {
        this.nudges--
        if (this.waiter && this.nudgeFor === this.exchangeId) this.acknowledge()
        return
      }
      if (this.waiter) this.acknowledge()
      else if (this.extraOks > 0) {
        this.extraOks--
        this.extraWaiter?.()
      } else log('%s: ok nobody waited for', this.o.name)
    },
    wait: () => { if (this.waiter) this.acknowledge() },
    resend: (r) => {
      this.resendRequest = r.line
      this.clearPendingError()
    },
    error: (r) => {
      if (r.class === 'resend') return // the resend request follows
      if (r.class === 'recoverable') {
        log('%s: firmware reports %s; going on', this.o.name, r.message)
        return
      }
      this.pendingError = r.message
      this.errorTimer = setTimeout(() => {
        this.fatal(new PrinterError('firmware-error', `firmware error: ${this.pendingError}`))
      }, this.o.errorGraceMs)
    },
    fatal: (r) => { this.fatal(new PrinterError('halted', `firmware halted: ${r.message}`)) },
    busy: () => { this.busy = true; this.arm() },
    start: () => {
      // the board reset itself (power, watchdog, reset button): whatever it had of the job is gone
      if (this.o.onReset) this.o.onReset()
      else if (this.waiter) this.fatal(new PrinterError('reset', 'the printer restarted (reset) during the job'))
    },
    action: (r) => this.o.onAction?.(r.action),
    temperatures: (r) => this.setTemperatures(r.temperatures),
    other: (r) => this.captured?.push(r.text),
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

  /** Sends a command and returns the lines the firmware wrote before its `ok` (M114, M115). */
  async query (command: string): Promise<string[]> {
    const lines: string[] = []
    this.captured = lines
    try {
      await this.transmit(command)
    } finally {
      this.captured = undefined
    }
    return lines
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

  /**
   * Writes a command as it is, unnumbered, whatever state the protocol is in (failed included):
   * for the commands that make the printer safe. Marlin runs an unnumbered line without checks.
   */
  writeRaw (command: string): void {
    log('%s > %s (raw)', this.o.name, command)
    this.link.write(command)
  }

  /** Resolves true once `count` more `ok`s have arrived, false after ms. */
  whenOks (count: number, ms: number): Promise<boolean> {
    const target = this.oks + count
    if (count <= 0) return Promise.resolve(true)
    return new Promise((resolve) => {
      const done = (v: boolean) => { clearTimeout(timer); this.okListeners.delete(check); resolve(v) }
      const check = () => { if (this.oks >= target) done(true) }
      const timer = setTimeout(() => done(false), ms)
      this.okListeners.add(check)
    })
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

  /** Fails whatever waits and every later command with this error; writeRaw() still works. */
  fail (err: PrinterError): PrinterError {
    if (this.failure) return this.failure
    this.failure = err
    this.clearPendingError()
    clearTimeout(this.silenceTimer)
    const waiter = this.waiter
    this.waiter = undefined
    this.inFlightCommand = undefined
    waiter?.reject(err)
    this.extraWaiter?.()
    return err
  }

  close (): void {
    this.fail(new PrinterError('closed', `printer ${this.o.name} was closed`))
  }

  private fatal (err: PrinterError): PrinterError {
    const first = !this.failure
    const result = this.fail(err)
    if (first) this.o.onFailure(result)
    return result
  }

  private acknowledge (): void {
    const waiter = this.waiter!
    const resend = this.resendRequest
    this.waiter = undefined
    this.resendRequest = undefined
    clearTimeout(this.silenceTimer)
    waiter.resolve(resend)
  }

  private exchange (n: number): Promise<number | undefined> {
    this.throwIfFailed()
    const line = this.history.get(n)!
    this.inFlightCommand = line.slice(line.indexOf(' ') + 1, line.lastIndexOf('*'))
    this.exchangeId++
    this.busy = false
    this.nudged = false
    // a poll answers like a nudge: answers still due to older nudges are not told apart from it
    if (/^M105\b/.test(this.inFlightCommand)) this.nudges = 0
    return new Promise<number | undefined>((resolve, reject) => {
      this.waiter = {
        resolve: (resend) => { this.inFlightCommand = undefined; resolve(resend) },
        reject,
      }
      this.arm()
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

  /**
   * Watches the silence while an `ok` is due. A short command gets a nudge (M105) after nudgeMs:
   * the ok may have been garbled on the wire. A long one (homing, heating, dwell) or a firmware
   * that said `busy:` gets idleTimeoutMs. After a nudge, idleTimeoutMs more of silence fails.
   */
  private arm (): void {
    clearTimeout(this.silenceTimer)
    if (!this.waiter || this.failure) return
    const long = this.busy || isLongCommand(this.inFlightCommand ?? '')
    const ms = this.nudged || long ? this.o.idleTimeoutMs : this.o.nudgeMs
    this.silenceTimer = setTimeout(() => this.onSilence(), ms)
    this.silenceTimer.unref()
  }

  private onSilence (): void {
    if (!this.waiter || this.failure) return
    if (!this.nudged) {
      this.nudged = true
      this.nudges++
      this.nudgeFor = this.exchangeId
      log('%s: no answer to %s, nudging with M105', this.o.name, this.inFlightCommand)
      this.link.write('M105')
      this.arm()
      return
    }
    const secs = Math.round(this.o.idleTimeoutMs / 1000)
    this.fatal(new PrinterError('timeout', `printer ${this.o.name} stopped answering (nothing for ${secs} s after a nudge)`))
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
