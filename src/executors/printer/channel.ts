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
  /** lines in flight at most, however much room the firmware reports (default: no cap) */
  ahead?: number
  onTemperatures (t: Temperatures): void
  /** a fatal firmware report or a reset during a command, also when no command is waiting */
  onFailure (err: PrinterError): void
  /** the firmware booted (`start`): it has forgotten line numbers, moves and temperatures; fail what waits */
  onReset? (): void
  /** a host action command from the printer (`//action:pause`, ...) */
  onAction? (action: string): void
}

interface Waiter {
  check (): boolean
  resolve (): void
  reject (err: PrinterError): void
}

const HISTORY = 64

/**
 * The numbered-line protocol over one link: line numbers and checksums, lines in flight waiting
 * for their `ok`, resends, out-of-band commands and firmware errors.
 *
 * One line is in flight at a time unless the firmware sends Marlin's ADVANCED_OK
 * (`ok N<line> P<planner> B<free>`): then as many as its last `B` says it has room for. Its `N`
 * names the line an `ok` answers, so a doubled `ok` is ignored and a lost one is covered by the
 * next. A plain `ok` names nothing: one line per `ok` is then the only safe count.
 *
 * A rejected line makes Marlin throw away what it has received and ask for the line again
 * (GCodeQueue::gcode_line_error); lines already on the wire behind it are rejected in turn, each
 * with its own request for the same line: those are expected and not acted on twice. A line the
 * firmware already has is rejected by its number, so sending from the requested line again never
 * doubles one. See bench/results/printer.md for what is left: the tail of a line cut
 * in two by that flush reaches Marlin without its number.
 */
export class Channel {
  temperatures: Temperatures = {}
  /** requests to send a line again, every one received */
  resends = 0
  /** every `ok` received so far */
  oks = 0
  /** what listens to replies besides the protocol (the connect handshake) */
  tap?: (r: Reply) => void

  /** the firmware sends ADVANCED_OK: lines are acknowledged by number */
  private advanced = false
  /** how many lines may await their `ok`: the firmware's last B (at least 1), else 1 */
  private window = 1
  /** the number of the next new line */
  private nextN = 1
  /** the next line to write; below nextN while lines are sent again */
  private sendN = 1
  /** the last line the firmware answered */
  private ackedN = 0
  /** bumped when unsent lines are dropped (cancel): whoever waits for them is released */
  private epoch = 0
  private readonly history = new Map<number, string>()
  private readonly waiters = new Set<Waiter>()
  /** the line being sent again, and how many more requests for it stale lines may still bring */
  private rewindAt?: number
  private staleResends = 0
  /** plain `ok`s still due after resend requests: they answer no line */
  private resendOks = 0
  /**
   * plain `ok`s taken as a resend request's while lines were unanswered, since a line was last
   * answered: each may have been a line's own (a firmware that sends no `ok` after `Resend:`)
   */
  private takenAsResendOks = 0
  /** an M110 N0 is waiting for its ok: the number of times the firmware rejected it */
  private renumbering = -1
  /** a numbered nudge (ADVANCED_OK) is out: the firmware's next resend request tells what it has */
  private probing = false
  private exchangeId = 0
  private extraOks = 0
  private extraWaiter?: () => void
  private pendingError?: string
  private errorTimer?: NodeJS.Timeout
  private silenceTimer?: NodeJS.Timeout
  private busy = false
  private nudged = false
  /** answers to M105 nudges still to come, and the write the last one was sent after */
  private nudges = 0
  private nudgeFor = -1
  private captured?: string[]
  private readonly okListeners = new Set<() => void>()
  private abandonBelow = -Infinity
  private failure?: PrinterError

  constructor (private readonly link: Link, private readonly o: ChannelOptions) {}

  /** why the channel stopped working, if it did */
  get failed (): PrinterError | undefined { return this.failure }

  /** the oldest command waiting for its `ok` (the one the firmware runs), if any */
  get inFlight (): string | undefined {
    return this.unacknowledged > 0 ? this.commandOf(this.ackedN + 1) : undefined
  }

  /** lines written and not yet answered */
  get unacknowledged (): number {
    return Math.max(0, this.sendN - 1 - this.ackedN)
  }

  /**
   * The `ok`s still certain to come for the lines written: those not yet answered, less the `ok`s
   * taken as a resend request's that may have been theirs.
   */
  get oksDue (): number {
    return Math.max(0, this.unacknowledged - this.takenAsResendOks)
  }

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
    const long = this.inFlight !== undefined && isLongCommand(this.inFlight)
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
      if (r.advanced) {
        this.advanced = true
        this.window = Math.max(1, Math.min(this.o.ahead || Infinity, r.advanced.buffer))
      }
      if (r.advanced?.line !== undefined) return this.acknowledgeThrough(r.advanced.line)
      // the `ok` that follows a resend request answers no line
      if (this.resendOks > 0 && !r.temperatures) {
        this.resendOks--
        if (this.unacknowledged > 0) this.takenAsResendOks++
        return this.pump()
      }
      // the answer to a nudge (M105 answers with temperatures): the line's own ok came before it or was lost
      if (this.nudges > 0 && r.temperatures) {
        this.nudges--
        if (this.unacknowledged > 0 && this.nudgeFor === this.exchangeId) this.acknowledgeThrough(this.ackedN + 1)
        return
      }
      if (this.advanced) {
        // numbered lines come back with their N; without one: M105's own ok, or an out-of-band command's
        const poll = r.temperatures ? this.firstUnacknowledged((c) => /^M105\b/.test(c)) : undefined
        if (poll !== undefined) return this.acknowledgeThrough(poll)
      } else if (this.unacknowledged > 0) return this.acknowledgeThrough(this.ackedN + 1)
      if (this.extraOks > 0) {
        this.extraOks--
        this.extraWaiter?.()
      } else log('%s: ok nobody waited for', this.o.name)
    },
    wait: () => { if (!this.advanced && this.unacknowledged > 0) this.acknowledgeThrough(this.ackedN + 1) },
    resend: (r) => {
      this.clearPendingError()
      this.resendOks++
      this.resends++
      this.onResend(r.line)
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
      else if (this.unacknowledged > 0) this.fatal(new PrinterError('reset', 'the printer restarted (reset) during the job'))
    },
    action: (r) => this.o.onAction?.(r.action),
    temperatures: (r) => this.setTemperatures(r.temperatures),
    other: (r) => this.captured?.push(r.text),
  }

  /**
   * Numbers a command as the next line and resolves once it is on the wire: at once while the
   * firmware has room for it, else when an `ok` makes room. Resolves false when the line was
   * dropped unsent (the job was cancelled); rejects with the channel's failure.
   */
  async stream (command: string): Promise<boolean> {
    return await this.send(command) !== undefined
  }

  /**
   * Sends one command as the next numbered line and resolves on its `ok`, re-sending from
   * wherever the firmware asks. Rejects with the channel's failure (disconnect, firmware error).
   */
  async transmit (command: string): Promise<void> {
    const epoch = this.epoch
    const n = await this.send(command)
    if (n !== undefined) await this.until(() => this.epoch !== epoch || this.ackedN >= n)
  }

  /** Resolves once every line written has been answered. */
  drain (): Promise<void> {
    return this.until(() => this.sendN === this.nextN && this.unacknowledged === 0)
  }

  /** Sends a command and returns the lines the firmware wrote before its `ok` (M114, M115). */
  async query (command: string): Promise<string[]> {
    await this.drain()
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
    await this.drain()
    this.history.clear()
    this.rewindAt = undefined
    this.ackedN = -1
    this.sendN = 0
    this.nextN = 1
    this.remember(0, numberedLine(0, 'M110 N0'))
    // a rejected M110 is answered with a resend of the firmware's old count: it is sent again
    this.renumbering = 0
    try {
      this.pump()
      await this.until(() => this.ackedN >= 0)
    } finally {
      this.renumbering = -1
    }
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

  /**
   * The job is over: lines not yet written are dropped, and lines already sent are dropped at
   * the next resend instead of being sent again.
   */
  abandon (): void {
    this.dropFrom(this.sendN)
    this.abandonBelow = this.nextN
  }

  /** Forgets a firmware error reported before (for a new job); a lost link stays failed. */
  recover (): void {
    if (this.failure?.code === 'disconnected' || this.failure?.code === 'closed') return
    this.failure = undefined
    this.clearPendingError()
    // what was in flight when it failed is given up; the next job starts with M110
    this.nextN = this.sendN
    this.ackedN = this.sendN - 1
    this.rewindAt = undefined
    this.resendOks = 0
    this.takenAsResendOks = 0
    this.probing = false
  }

  /** Fails whatever waits and every later command with this error; writeRaw() still works. */
  fail (err: PrinterError): PrinterError {
    if (this.failure) return this.failure
    this.failure = err
    this.clearPendingError()
    clearTimeout(this.silenceTimer)
    const waiters = [...this.waiters]
    this.waiters.clear()
    waiters.forEach((w) => w.reject(err))
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

  /** The firmware answered every line up to n. An answer for a line already answered is a doubled `ok`. */
  private acknowledgeThrough (n: number): void {
    if (n <= this.ackedN || n >= this.sendN) {
      log('%s: ok for line %d ignored (answered up to %d, sent up to %d)', this.o.name, n, this.ackedN, this.sendN - 1)
      return
    }
    this.ackedN = n
    this.takenAsResendOks = 0
    if (this.rewindAt !== undefined && n >= this.rewindAt) {
      this.rewindAt = undefined
      this.staleResends = 0
    }
    this.busy = false
    this.nudged = false
    this.probing = false
    this.arm()
    this.pump()
  }

  /** `Resend: r`: the firmware has every line before r and wants r next. */
  private onResend (r: number): void {
    if (this.renumbering >= 0) {
      if (++this.renumbering > 5) {
        this.fatal(new PrinterError('protocol', 'the firmware keeps rejecting M110 (line number reset)'))
        return
      }
      this.sendN = 0
      this.pump()
      return
    }
    if (r > this.sendN) {
      this.fatal(new PrinterError('protocol', `the firmware asked for line ${r}; the host is at line ${this.sendN - 1}`))
      return
    }
    // answer to a numbered nudge: the firmware has had every line before r long enough to run it; their oks were lost
    if (this.probing) {
      this.probing = false
      if (r - 1 > this.ackedN) this.acknowledgeThrough(r - 1)
    }
    // lines sent behind the rejected one each bring a request for it: only the first counts
    if (this.rewindAt === r && this.staleResends > 0) {
      this.staleResends--
      log('%s: resend request for %d from a line sent before the first one; ignored', this.o.name, r)
      return
    }
    if (r < this.abandonBelow) {
      // cancelled: nothing more of the job is sent; the next command takes number r
      this.staleResends = this.sendN - 1 - r
      this.rewindAt = r
      this.abandonBelow = r
      this.dropFrom(r)
      return
    }
    if (r === this.sendN) return // nothing of what was sent is missing
    if (!this.history.has(r)) {
      this.fatal(new PrinterError('protocol', `the firmware asked for line ${r}, which the host no longer has (at line ${this.sendN - 1})`))
      return
    }
    log('%s: sending again from line %d (sent up to %d)', this.o.name, r, this.sendN - 1)
    this.staleResends = this.sendN - 1 - r
    this.rewindAt = r
    if (r <= this.ackedN) this.ackedN = r - 1
    this.sendN = r
    this.pump()
  }

  // the number the line got, once written; undefined when it was dropped unsent
  private async send (command: string): Promise<number | undefined> {
    await this.settleExtras()
    this.throwIfFailed()
    const n = this.nextN++
    this.remember(n, numberedLine(n, command))
    const epoch = this.epoch
    this.pump()
    await this.until(() => this.epoch !== epoch || this.sendN > n)
    return this.epoch === epoch ? n : undefined
  }

  /** Forgets lines from n on (never written, or given up); whoever waits for them is released. */
  private dropFrom (n: number): void {
    if (n >= this.nextN && n >= this.sendN) return
    for (let i = n; i < this.nextN; i++) this.history.delete(i)
    this.nextN = n
    this.sendN = Math.min(this.sendN, n)
    if (this.ackedN >= n) this.ackedN = n - 1
    this.epoch++
    this.settle()
  }

  // writes what the firmware has room for
  private pump (): void {
    if (this.failure) return
    // stale copies of lines sent before a resend request are still reaching the firmware: they take room too
    const stale = this.rewindAt === undefined ? 0 : this.staleResends
    const room = this.renumbering >= 0 ? 1 : Math.max(1, this.window - stale)
    while (this.sendN < this.nextN && this.unacknowledged < room) {
      this.write(this.sendN++)
    }
    this.settle()
  }

  private write (n: number): void {
    const line = this.history.get(n)!
    const command = this.commandOf(n)!
    if (this.unacknowledged === 1) {
      this.busy = false
      this.nudged = false
    }
    this.exchangeId++
    // a poll answers like a nudge: answers still due to older nudges are not told apart from it
    if (/^M105\b/.test(command)) this.nudges = 0
    this.link.write(line)
    this.arm()
  }

  private until (check: () => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure)
      if (check()) return resolve()
      this.waiters.add({ check, resolve, reject })
    })
  }

  private settle (): void {
    for (const w of this.waiters) {
      if (w.check()) {
        this.waiters.delete(w)
        w.resolve()
      }
    }
  }

  private firstUnacknowledged (match: (command: string) => boolean): number | undefined {
    for (let n = this.ackedN + 1; n < this.sendN; n++) if (match(this.commandOf(n) ?? '')) return n
    return undefined
  }

  private commandOf (n: number): string | undefined {
    const line = this.history.get(n)
    return line === undefined ? undefined : line.slice(line.indexOf(' ') + 1, line.lastIndexOf('*'))
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
   * Watches the silence while an `ok` is due. A short command gets a nudge after nudgeMs: the
   * ok may have been garbled on the wire. A long one (homing, heating, dwell) or a firmware that
   * said `busy:` gets idleTimeoutMs. After a nudge, idleTimeoutMs more of silence fails.
   */
  private arm (): void {
    clearTimeout(this.silenceTimer)
    if (this.unacknowledged === 0 || this.failure) return
    const long = this.busy || isLongCommand(this.inFlight ?? '')
    const ms = this.nudged || long ? this.o.idleTimeoutMs : this.o.nudgeMs
    this.silenceTimer = setTimeout(() => this.onSilence(), ms)
    this.silenceTimer.unref()
  }

  // Without ADVANCED_OK the nudge is M105, whose answer stands for the lost ok. With it, the
  // oldest unanswered line goes again: the firmware runs it if it never had it, else rejects it
  // by number and its resend request says which lines it has.
  private onSilence (): void {
    if (this.unacknowledged === 0 || this.failure) return
    if (!this.nudged) {
      this.nudged = true
      log('%s: no answer to %s, nudging', this.o.name, this.inFlight)
      if (this.advanced) {
        this.probing = true
        this.exchangeId++
        this.link.write(this.history.get(this.ackedN + 1)!)
      } else {
        this.nudges++
        this.nudgeFor = this.exchangeId
        this.link.write('M105')
      }
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
