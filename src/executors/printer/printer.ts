/**
 * A serial 3D printer (Marlin and firmwares speaking its host protocol) as an rrcloud component.
 *
 *   const printer = createPrinter({ name: 'mk3', path: '/dev/ttyUSB0', baudRate: 115200 })
 *   await printer.connect()            // open, wait for `start` or an answer to M105, M110 N0
 *   const result = await printer.print('/data/cube.gcode', { onProgress: (p) => show(p.percent) })
 *   await printer.pause()              // resolves once the line in flight is acknowledged
 *   printer.resume()
 *   await printer.cancel()             // stops, then M104 S0, M140 S0, M107, M84; print() resolves 'cancelled'
 *   printer.state; printer.progress; printer.temperatures; printer.lastError
 *   printer.on('state' | 'progress' | 'temperatures', listener)
 *   await printer.close()              // cancels a running job first; closing twice is harmless
 *
 * print() resolves with status 'complete' or 'cancelled' and rejects with a PrinterError whose
 * `code` says why: 'busy' (one job per printer: a second print() is refused, the node queues),
 * 'disconnected', 'firmware-error' (`Error:` without a resend request, `!!`, a reset), 'timeout',
 * 'connect-timeout', 'open-failed', 'file', 'protocol', 'closed'. It connects first when needed.
 * The file is streamed line by line; one numbered, checksummed line is in flight at a time
 * (see channel.ts for why), temperatures are polled with numbered M105 during the job and pauses.
 * Pausing only stops sending: the printer finishes what it has and keeps its temperatures.
 */
import { EventEmitter } from 'node:events'
import { stat } from 'node:fs/promises'
import { basename } from 'node:path'
import debug from 'debug'
import { Channel } from './channel.js'
import { PrinterError } from './errors.js'
import { readGcode } from './gcode.js'
import { Job, type PrinterState, type PrintOptions, type PrintProgress, type PrintResult } from './job.js'
import { isWaitCommand, type Temperatures } from './protocol.js'
import { openSerialLink, type Link, type OpenLink } from './serial.js'

export { PrinterError } from './errors.js'
export type { PrinterErrorCode } from './errors.js'
export type { PrinterState, PrintOptions, PrintProgress, PrintResult } from './job.js'
export type { Temperatures, HeaterReading } from './protocol.js'
export { listSerialPorts, type SerialPortInfo } from './serial.js'

const log = debug('rrcloud:printer')

export interface PrinterConfig {
  name: string
  /** the serial device, e.g. /dev/ttyUSB0 */
  path: string
  baudRate?: number
  /** how long connect() waits for the firmware (default 15000; boards reset when the port opens) */
  connectTimeoutMs?: number
  /** M105 probes while waiting for the firmware (default every 1000 ms) */
  probeIntervalMs?: number
  /** quiet time after the firmware is seen, so late answers to probes are not taken for others (250) */
  settleMs?: number
  /** temperature polls (M105) during a job and while paused; 0 disables (default 5000) */
  temperatureIntervalMs?: number
  /** silence while an `ok` is due before M105 is sent to provoke one; twice fails the job (60000) */
  idleTimeoutMs?: number
  /** how long an `Error:` may wait for its resend request before the job fails (500) */
  errorGraceMs?: number
  /** what cancel() sends to make the printer safe */
  cancelCommands?: string[]
}

export interface PrinterDeps {
  /** opens the port; serialport by default */
  openLink?: OpenLink
}

export interface Printer {
  readonly name: string
  readonly path: string
  readonly state: PrinterState
  readonly temperatures: Temperatures
  /** the progress of the running job, if any */
  readonly progress: PrintProgress | undefined
  /** the last failure (connection, firmware), kept until the next one */
  readonly lastError: string | undefined
  connect (): Promise<void>
  print (file: string, opts?: PrintOptions): Promise<PrintResult>
  pause (): Promise<void>
  resume (): void
  cancel (): Promise<void>
  close (): Promise<void>
  on (event: 'state', listener: (state: PrinterState) => void): this
  on (event: 'progress', listener: (progress: PrintProgress) => void): this
  on (event: 'temperatures', listener: (t: Temperatures) => void): this
  off (event: string, listener: (...args: any[]) => void): this
}

export const SAFE_COMMANDS = ['M104 S0', 'M140 S0', 'M107', 'M84']

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
  private readonly c: Required<PrinterConfig>

  constructor (config: PrinterConfig, private readonly openLink: OpenLink) {
    super()
    this.c = {
      baudRate: 115200,
      connectTimeoutMs: 15000,
      probeIntervalMs: 1000,
      settleMs: 250,
      temperatureIntervalMs: 5000,
      idleTimeoutMs: 60000,
      errorGraceMs: 500,
      cancelCommands: SAFE_COMMANDS,
      ...config,
    }
    this.name = config.name
    this.path = config.path
  }

  get progress (): PrintProgress | undefined {
    return this.job?.snapshot(this.state, this.channel?.resends ?? 0, this.temperatures)
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
    const job = new Job(file, opts)
    this.job = job
    try {
      job.totalBytes = await stat(file).then((s) => s.size, (err: Error) => {
        throw new PrinterError('file', `cannot read ${basename(file)}: ${err.message}`)
      })
      await this.connect()
      return await this.run(job, this.channel!)
    } catch (err) {
      if (err instanceof PrinterError) this.lastError = err.message
      log('%s: job %s failed: %s', this.name, file, (err as Error).message)
      throw err
    } finally {
      this.job = undefined
      job.end()
      if (!this.closing) this.setState(this.channel ? 'idle' : 'disconnected')
    }
  }

  pause (): Promise<void> {
    const job = this.job
    if (!job || job.cancelRequested || this.state !== 'printing') return Promise.resolve()
    job.paused = true
    this.setState('paused')
    return job.whenPaused()
  }

  resume (): void {
    const job = this.job
    if (!job || !job.paused || job.cancelRequested) return
    job.paused = false
    this.setState('printing')
    job.wake()
  }

  async cancel (): Promise<void> {
    const job = this.job
    if (!job) return
    if (!job.cancelRequested) {
      job.cancelRequested = true
      const ch = this.channel
      // M109/M190 would keep the cancel waiting until the target is reached
      if (ch?.inFlight && isWaitCommand(ch.inFlight)) ch.sendOutOfBand('M108')
      ch?.abandon()
      if (this.state === 'printing' || this.state === 'paused') this.setState('cancelling')
      job.wake()
    }
    await job.ended
  }

  close (): Promise<void> {
    this.closing ??= (async () => {
      if (this.job) await Promise.race([this.cancel(), new Promise((resolve) => setTimeout(resolve, 5000))])
      this.abortConnect?.(this.closedError())
      await this.connecting?.catch(() => {})
      this.channel?.close()
      await this.link?.close()
      this.channel = undefined
      this.link = undefined
      this.setState('closed')
    })()
    return this.closing
  }

  private async run (job: Job, ch: Channel): Promise<PrintResult> {
    ch.recover()
    this.setState(job.cancelRequested ? 'cancelling' : 'printing')
    await ch.resetNumbering()
    const resendsBefore = ch.resends
    const interval = this.c.temperatureIntervalMs
    job.nextPoll = Date.now() + interval
    this.report(job, resendsBefore, true)
    try {
      for await (const c of readGcode(job.file)) {
        await this.checkpoint(job, ch)
        if (job.cancelRequested) break
        if (interval > 0 && Date.now() >= job.nextPoll) await this.poll(job, ch)
        await ch.transmit(c.command)
        job.linesSent++
        job.bytesSent = c.endOffset
        this.report(job, resendsBefore, false)
      }
    } catch (err) {
      if (err instanceof PrinterError) throw err
      throw new PrinterError('file', `cannot read ${basename(job.file)}: ${(err as Error).message}`)
    }
    if (job.cancelRequested) {
      this.setState('cancelling')
      for (const command of this.c.cancelCommands) await ch.transmit(command)
    } else job.bytesSent = job.totalBytes
    const p = this.report(job, resendsBefore, true)
    const status = job.cancelRequested ? 'cancelled' : 'complete'
    log('%s: %s %s, %d lines in %d ms', this.name, status, job.file, p.linesSent, p.elapsedMs)
    const { state: _, ...counts } = p
    return { ...counts, status, linesPerSecond: p.elapsedMs > 0 ? Math.round(1000 * p.linesSent / p.elapsedMs) : 0 }
  }

  // between two lines: stay here while paused (polling temperatures), fail if the channel did
  private async checkpoint (job: Job, ch: Channel): Promise<void> {
    for (;;) {
      if (ch.failed) throw ch.failed
      if (job.cancelRequested || !job.paused) return
      job.notifyPaused()
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

  private report (job: Job, resendsBefore: number, force: boolean): PrintProgress {
    const p = job.snapshot(this.state, (this.channel?.resends ?? resendsBefore) - resendsBefore, this.temperatures)
    if (!job.reportDue(force)) return p
    job.opts.onProgress?.(p)
    this.emit('progress', p)
    return p
  }

  private async doConnect (): Promise<void> {
    this.setState('connecting')
    const box: { ch?: Channel } = {}
    let link: Link
    try {
      link = await this.openLink({
        path: this.path,
        baudRate: this.c.baudRate,
        onLine: (line) => box.ch?.handleLine(line),
        onClose: (reason) => { if (box.ch) this.lost(box.ch, reason) },
      })
    } catch (err) {
      this.setState('disconnected')
      throw this.failed(new PrinterError('open-failed', `cannot open ${this.path}: ${(err as Error).message}`))
    }
    const ch = box.ch = new Channel(link, {
      name: this.name,
      idleTimeoutMs: this.c.idleTimeoutMs,
      errorGraceMs: this.c.errorGraceMs,
      extraOkMs: Math.min(3000, this.c.idleTimeoutMs),
      onTemperatures: (t) => { this.temperatures = t; this.emit('temperatures', t) },
      onFailure: (err) => { this.lastError = err.message; this.job?.wake() },
    })
    try {
      await this.handshake(ch)
      if (this.closing) throw this.closedError()
      this.channel = ch
      this.link = link
      this.setState('idle')
      log('%s: connected on %s', this.name, this.path)
    } catch (err) {
      ch.close()
      await link.close()
      this.setState(this.closing ? 'closed' : 'disconnected')
      throw this.failed(err instanceof PrinterError ? err : new PrinterError('open-failed', (err as Error).message))
    } finally {
      this.abortConnect = undefined
    }
  }

  // `start` (the board booted) or any answer to an M105 probe means firmware is listening
  private async handshake (ch: Channel): Promise<void> {
    const timeoutError = new PrinterError('connect-timeout',
      `no answer from a printer on ${this.path} within ${this.c.connectTimeoutMs / 1000} s (is it powered, at ${this.c.baudRate} baud?)`)
    let timer: NodeJS.Timeout | undefined
    let prober: NodeJS.Timeout | undefined
    let quiet: NodeJS.Timeout | undefined
    try {
      await new Promise<void>((resolve, reject) => {
        this.abortConnect = reject
        timer = setTimeout(() => reject(timeoutError), this.c.connectTimeoutMs)
        let seen = false
        ch.tap = (r) => {
          if (!seen && (r.kind === 'start' || r.kind === 'ok' || r.kind === 'temperatures')) {
            seen = true
            clearInterval(prober)
          }
          if (seen) {
            clearTimeout(quiet)
            quiet = setTimeout(resolve, this.c.settleMs)
          }
        }
        const probe = () => ch.sendOutOfBand('M105', false)
        prober = setInterval(probe, this.c.probeIntervalMs)
        probe()
      })
      ch.tap = undefined
      clearTimeout(timer)
      this.abortConnect = (err) => ch.fail(err)
      timer = setTimeout(() => ch.fail(timeoutError), this.c.connectTimeoutMs)
      await ch.resetNumbering()
    } finally {
      ch.tap = undefined
      clearTimeout(timer)
      clearInterval(prober)
      clearTimeout(quiet)
    }
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
    if (!job) this.setState('disconnected')
    job?.wake()
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
