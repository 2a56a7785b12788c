/**
 * A serial 3D printer (Marlin and firmwares speaking its host protocol) as an rrcloud component.
 *
 *   const printer = createPrinter({ name: 'mk3', path: '/dev/ttyUSB0', baudRate: 115200 })
 *   await printer.connect()            // open, wait for `start` or an answer to M105, M110 N0
 *   const result = await printer.print('/data/cube.gcode', { onProgress: (p) => show(p.percent) })
 *   await printer.pause()              // resolves once the moves sent are done (M400) and the head is parked
 *   printer.resume()                   // heaters and head back where they were, then the file goes on
 *   await printer.cancel()             // stops, then M104 S0, M140 S0, M107, M84; print() resolves 'cancelled'
 *   printer.emergencyStop()            // M112 at once
 *   printer.state; printer.progress; printer.temperatures; printer.lastError
 *   printer.on('state' | 'progress' | 'temperatures', listener)
 *   await printer.close()              // makes a running print safe first; closing twice is harmless
 *
 * print() resolves with status 'complete' or 'cancelled' and rejects with a PrinterError whose
 * `code` says why: 'busy' (one job per printer: a second print() is refused, the node queues),
 * 'disconnected', 'firmware-error' (`Error:` without a resend request), 'halted' (`!!`, kill(),
 * thermal runaway, M112: refused until the firmware restarts), 'reset', 'timeout',
 * 'connect-timeout', 'open-failed', 'file', 'protocol', 'closed'. It connects first when needed.
 *
 * A print that does not complete, however it ends, is followed by the safety commands (safety.ts),
 * also when the line protocol is broken; a print cut off by a lost port gets them once the port is
 * back. A lost port is looked for again every reconnectMs. The file is streamed line by line as
 * numbered, checksummed lines: one in flight at a time, or as many as the firmware says it has
 * room for when it sends ADVANCED_OK (see channel.ts); its own line numbers and M110 are the
 * host's business and handled here. `;@pause` in the file and `//action:pause`,
 * `//action:resume`, `//action:cancel` from the printer act as the calls above.
 * listSerialPorts() lists candidate ports (from the device folder where there is no udev).
 * Configuration (timeouts, polling, the safety and park commands): PrinterConfig in types.ts.
 */
import { EventEmitter } from 'node:events'
import { stat } from 'node:fs/promises'
import { basename } from 'node:path'
import debug from 'debug'
import type { Channel } from './channel.js'
import { connectChannel } from './connect.js'
import { PrinterError } from './errors.js'
import { readGcode } from './gcode.js'
import { Job } from './job.js'
import { MotionState, park, unparkCommands } from './pause.js'
import { isLongCommand, type Temperatures } from './protocol.js'
import { makeSafe } from './safety.js'
import type { Printer, PrinterConfig, PrinterDeps, PrinterState, PrintOptions, PrintProgress, PrintResult } from './types.js'
import { openSerialLink, type Link, type OpenLink } from './serial.js'

export { PrinterError } from './errors.js'
export type { PrinterErrorCode } from './errors.js'
export type { Printer, PrinterConfig, PrinterDeps, PrinterState, PrintOptions, PrintProgress, PrintResult } from './types.js'
export type { Temperatures, HeaterReading } from './protocol.js'
export { listSerialPorts, type SerialPortInfo, type ListOptions } from './serial.js'

const log = debug('rrcloud:printer')

export const SAFE_COMMANDS = ['M104 S0', 'M140 S0', 'M107', 'M84']

/** What the loop does with a command of the file instead of just sending it. */
type FileHandler = (p: SerialPrinter, job: Job, ch: Channel) => Promise<void>
const FILE_HANDLERS: Record<string, FileHandler> = {
  // a pause the file asks for: the next checkpoint parks
  '@pause': async (p) => { void p.pause() },
  // the host numbers the lines: the file's own reset would break the count, so the host does it
  M110: async (_p, _job, ch) => { await ch.resetNumbering() },
}
const handlerOf = (command: string): FileHandler | undefined =>
  FILE_HANDLERS[command === '@pause' ? command : /^[GM]\d+/i.exec(command)?.[0].toUpperCase() ?? '']

class SerialPrinter extends EventEmitter implements Printer {
  readonly name: string
  readonly path: string
  state: PrinterState = 'disconnected'
  temperatures: Temperatures = {}
  lastError: string | undefined
  private channel?: Channel
  private link?: Link
  private job?: Job
  private connecting?: Promise<void>
  private abortConnect?: (err: PrinterError) => void
  private closing?: Promise<void>
  private reconnectTimer?: NodeJS.Timeout
  private reconnecting = false
  /** why the firmware stopped and waits for a reset, if it did */
  private halted?: string
  /** a print was cut off with no way to reach the printer: make it safe once it is back */
  private unsafe = false
  private readonly c: Required<PrinterConfig>

  constructor (config: PrinterConfig, private readonly openLink: OpenLink) {
    super()
    this.c = {
      baudRate: 115200,
      connectTimeoutMs: 15000,
      probeIntervalMs: 1000,
      settleMs: 250,
      temperatureIntervalMs: 5000,
      nudgeMs: 4000,
      idleTimeoutMs: 60000,
      errorGraceMs: 500,
      cancelCommands: SAFE_COMMANDS,
      safeTimeoutMs: 3000,
      park: [] as string[],
      reconnectMs: 2000,
      ahead: 0,
      // an option given as undefined keeps its default
      ...Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined)),
    } as Required<PrinterConfig>
    this.name = config.name
    this.path = config.path
  }

  get progress (): PrintProgress | undefined {
    const job = this.job
    return job?.snapshot(this.state, (this.channel?.resends ?? job.resendBase) - job.resendBase, this.temperatures)
  }

  connect (): Promise<void> {
    if (this.closing) return Promise.reject(this.closedError())
    if (this.channel) return Promise.resolve()
    this.connecting ??= this.doConnect().finally(() => { this.connecting = undefined })
    return this.connecting
  }

  async print (file: string, opts: PrintOptions = {}): Promise<PrintResult> {
    if (this.closing) throw this.closedError()
    if (this.job) {
      throw new PrinterError('busy', `printer ${this.name} is busy printing ${basename(this.job.file)}; one job at a time`)
    }
    if (this.halted) throw this.haltedError()
    const job = new Job(file, opts)
    this.job = job
    try {
      job.totalBytes = await stat(file).then((s) => s.size, (err: Error) => {
        throw new PrinterError('file', `cannot read ${basename(file)}: ${err.message}`)
      })
      await this.connect()
      if (this.halted) throw this.haltedError()
      if (!this.channel) throw new PrinterError('disconnected', this.lastError ?? `printer ${this.name} is not connected`)
      return await this.run(job, this.channel)
    } catch (err) {
      if (err instanceof PrinterError) this.lastError = err.message
      log('%s: job %s failed: %s', this.name, file, (err as Error).message)
      throw err
    } finally {
      this.job = undefined
      job.end()
      if (!this.closing) this.setState(this.resting())
    }
  }

  pause (): Promise<void> {
    const job = this.job
    if (!job || job.cancelRequested) return Promise.resolve()
    if (!job.paused) {
      job.paused = true
      this.setState('paused')
      this.report(job, true)
    }
    return job.whenPaused()
  }

  resume (): void {
    const job = this.job
    if (!job || !job.paused || job.cancelRequested) return
    job.paused = false
    this.setState('printing')
    this.report(job, true)
    job.wake()
  }

  async cancel (): Promise<void> {
    const job = this.job
    if (!job) return
    if (!job.cancelRequested) {
      job.cancelRequested = true
      const ch = this.channel
      ch?.abandon()
      // a long command would keep the loop (and the safety commands) waiting: send them now
      if (ch?.inFlight && isLongCommand(ch.inFlight)) void this.makeJobSafe(job, false)
      if (this.state === 'printing' || this.state === 'paused') this.setState('cancelling')
      job.wake()
    }
    await job.ended
  }

  emergencyStop (): void {
    const ch = this.channel
    if (!ch) throw new PrinterError('disconnected', `printer ${this.name} is not connected${this.lastError ? ` (${this.lastError})` : ''}`)
    ch.writeRaw('M112')
    log('%s: emergency stop', this.name)
    const err = new PrinterError('halted', `printer ${this.name}: emergency stop (M112)`)
    this.halt(err.message)
    if (this.job) this.job.estopped = true
    ch.fail(err)
    this.job?.wake()
  }

  close (): Promise<void> {
    this.closing ??= (async () => {
      clearTimeout(this.reconnectTimer)
      const job = this.job
      if (job) {
        job.cancelRequested = true
        this.channel?.abandon()
        job.wake()
        // not behind the line in flight: the safety commands go out now, unnumbered
        await this.makeJobSafe(job, false)
      }
      this.abortConnect?.(this.closedError())
      await this.connecting?.catch(() => {})
      this.channel?.close()
      await job?.ended
      await this.link?.close()
      this.channel = undefined
      this.link = undefined
      this.setState('closed')
    })()
    return this.closing
  }

  private async run (job: Job, ch: Channel): Promise<PrintResult> {
    ch.recover()
    this.setState(job.cancelRequested ? 'cancelling' : job.paused ? 'paused' : 'printing')
    job.resendBase = ch.resends
    const interval = this.c.temperatureIntervalMs
    const motion = new MotionState()
    let failure: unknown
    try {
      await ch.resetNumbering()
      job.nextPoll = Date.now() + interval
      this.report(job, true)
      for await (const c of readGcode(job.file)) {
        await this.checkpoint(job, ch, motion)
        if (job.cancelRequested) break
        if (interval > 0 && Date.now() >= job.nextPoll) await this.poll(job, ch)
        const handler = handlerOf(c.command)
        if (handler) await handler(this, job, ch)
        else {
          if (!await ch.stream(c.command)) break
          motion.track(c.command)
        }
        job.linesSent++
        job.bytesSent = c.endOffset
        this.report(job, false)
      }
      await ch.drain()
    } catch (err) {
      failure = err instanceof PrinterError ? err : new PrinterError('file', `cannot read ${basename(job.file)}: ${(err as Error).message}`)
    }
    // closed while cancelling (node stop): the print was cancelled, not failed
    if (failure && job.cancelRequested && (failure as PrinterError).code === 'closed') failure = undefined
    if (failure || job.cancelRequested) {
      this.setState('cancelling')
      if (!job.estopped) await this.makeJobSafe(job, true)
    }
    if (failure) throw failure
    if (!job.cancelRequested) job.bytesSent = job.totalBytes
    const p = this.report(job, true)!
    const status = job.cancelRequested ? 'cancelled' : 'complete'
    log('%s: %s %s, %d lines in %d ms', this.name, status, job.file, p.linesSent, p.elapsedMs)
    const { state: _, ...counts } = p
    return { ...counts, status, linesPerSecond: p.elapsedMs > 0 ? Math.round(1000 * p.linesSent / p.elapsedMs) : 0 }
  }

  /** Heaters, fan and motors off, once per job, however the job ends (see safety.ts). */
  private makeJobSafe (job: Job, numbered: boolean): Promise<void> {
    job.safe ??= (async () => {
      const ch = this.channel
      if (!ch || ch.failed?.code === 'disconnected' || ch.failed?.code === 'closed') {
        this.unsafe = true
        log('%s: cannot reach the printer to make it safe; will do once it is back', this.name)
        return
      }
      const outcome = await makeSafe(ch, { name: this.name, commands: this.c.cancelCommands, timeoutMs: this.c.safeTimeoutMs, numbered })
      if (outcome === 'emergency-stop') this.halt(`no answer to the safety commands: emergency stop (M112) sent`)
    })()
    return job.safe
  }

  // between two lines: park and stay here while paused (polling temperatures), fail if the channel did
  private async checkpoint (job: Job, ch: Channel, motion: MotionState): Promise<void> {
    for (;;) {
      if (ch.failed) throw ch.failed
      if (job.cancelRequested) return
      if (!job.paused) {
        const parked = job.parkedAt
        job.parkedAt = undefined
        if (parked) for (const c of unparkCommands(parked, motion)) await ch.transmit(c)
        job.parked = false
        return
      }
      if (!job.parked) {
        job.parkedAt = await park(ch, this.c.park, this.temperatures)
        job.parked = true
        job.notifyPaused()
        continue
      }
      const interval = this.c.temperatureIntervalMs
      await job.sleep(interval > 0 ? Math.max(0, job.nextPoll - Date.now()) : undefined)
      if (job.paused && !job.cancelRequested && !ch.failed && interval > 0 && Date.now() >= job.nextPoll) {
        await this.poll(job, ch)
      }
    }
  }

  private async poll (job: Job, ch: Channel): Promise<void> {
    await ch.transmit('M105')
    job.temperaturePolls++
    job.nextPoll = Date.now() + this.c.temperatureIntervalMs
  }

  private report (job: Job, force: boolean): PrintProgress | undefined {
    if (!job.reportDue(force)) return
    const p = this.progress!
    job.opts.onProgress?.(p)
    this.emit('progress', p)
    return p
  }

  private async doConnect (): Promise<void> {
    // a background retry keeps showing `disconnected` rather than flapping
    if (this.state !== 'disconnected' || !this.reconnecting) this.setState('connecting')
    const attempt = connectChannel({
      ...this.c,
      name: this.name,
      path: this.path,
      openLink: this.openLink,
      onTemperatures: (t) => { this.temperatures = t; this.emit('temperatures', t) },
      onFailure: (err) => {
        this.lastError = err.message
        if (err.code === 'halted') this.halt(err.message)
        this.job?.wake()
      },
      onReset: () => this.onReset(),
      onAction: (action) => this.onAction(action),
      onLost: (ch, reason) => this.lost(ch, reason),
    })
    this.abortConnect = attempt.abort
    try {
      const { channel, link } = await attempt.done
      if (this.closing) {
        channel.close()
        await link.close()
        throw this.closedError()
      }
      this.channel = channel
      this.link = link
      this.halted = undefined
      log('%s: connected on %s', this.name, this.path)
      if (this.unsafe) {
        this.unsafe = false
        const outcome = await makeSafe(channel, { name: this.name, commands: this.c.cancelCommands, timeoutMs: this.c.safeTimeoutMs, numbered: true })
        log('%s: made safe after the print that was cut off: %s', this.name, outcome)
        channel.recover()
      }
      if (!this.job) this.setState(this.resting()) // a job that waited for this sets its own state
    } catch (err) {
      this.setState(this.closing ? 'closed' : 'disconnected')
      this.scheduleReconnect()
      throw this.failed(err as PrinterError)
    } finally {
      this.abortConnect = undefined
    }
  }

  private scheduleReconnect (): void {
    if (this.closing || this.reconnectTimer || this.c.reconnectMs <= 0) return
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined
      if (this.closing || this.channel) return
      this.reconnecting = true
      this.connect().then(() => log('%s: reconnected', this.name), () => {}).finally(() => { this.reconnecting = false })
    }, this.c.reconnectMs)
    this.reconnectTimer.unref()
  }

  private lost (ch: Channel, reason: string): void {
    const job = this.job
    const where = job ? ` after ${job.linesSent} lines of ${basename(job.file)}` : ''
    const err = new PrinterError('disconnected', `printer ${this.name} disconnected${where}: ${reason}`)
    log('%s', err.message)
    ch.fail(err)
    this.failed(err)
    this.abortConnect?.(err)
    if (this.channel !== ch) return
    this.channel = undefined
    this.link = undefined
    if (job && !job.safe) this.unsafe = true
    if (!job) this.setState('disconnected')
    job?.wake()
    this.scheduleReconnect()
  }

  // the firmware booted: a paused print cannot go on; a halted printer can print again
  private onReset (): void {
    const ch = this.channel
    if (!ch) return // the boot message of the connection being made (the handshake retries)
    log('%s: the firmware restarted', this.name)
    this.halted = undefined
    const job = this.job
    if (job) {
      ch.fail(new PrinterError('reset', `the printer restarted (reset) while the print was ${job.paused ? 'paused' : 'running'}`))
      job.wake()
    } else this.setState(this.resting())
  }

  // host action commands sent by the printer (its own screen, a filament sensor)
  private onAction (action: string): void {
    log('%s: //action:%s', this.name, action)
    if (action === 'pause' || action === 'paused') void this.pause()
    else if (action === 'resume' || action === 'resumed') this.resume()
    else if (action === 'cancel') void this.cancel()
  }

  private halt (reason: string): void {
    this.halted = reason
    this.lastError = reason
    if (!this.job) this.setState(this.resting())
  }

  private resting (): PrinterState {
    return !this.channel ? 'disconnected' : this.halted ? 'halted' : 'idle'
  }

  private haltedError (): PrinterError {
    return new PrinterError('halted', `printer ${this.name} has halted (${this.halted}); reset it (reset button or power), then print again`)
  }

  private failed (err: PrinterError): PrinterError {
    this.lastError = err.message
    return err
  }

  private closedError (): PrinterError {
    return new PrinterError('closed', `printer ${this.name} is closed`)
  }

  private setState (state: PrinterState): void {
    if (this.state === state || this.state === 'closed') return
    this.state = state
    this.emit('state', state)
  }
}

/** Creates a printer component; nothing is opened until connect() or print(). */
export function createPrinter (config: PrinterConfig, deps: PrinterDeps = {}): Printer {
  return new SerialPrinter(config, deps.openLink ?? openSerialLink)
}
