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
 * listSerialPorts() lists candidate ports, [] where serialport cannot list them (no udev).
 * Configuration (timeouts, polling, the cancel commands): PrinterConfig in types.ts.
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
import type { Printer, PrinterConfig, PrinterDeps, PrinterState, PrintOptions, PrintProgress, PrintResult } from './types.js'
import { isWaitCommand, type Temperatures } from './protocol.js'
import { openSerialLink, type Link, type OpenLink } from './serial.js'

export { PrinterError } from './errors.js'
export type { PrinterErrorCode } from './errors.js'
export type { Printer, PrinterConfig, PrinterDeps, PrinterState, PrintOptions, PrintProgress, PrintResult } from './types.js'
export type { Temperatures, HeaterReading } from './protocol.js'
export { listSerialPorts, type SerialPortInfo } from './serial.js'

const log = debug('rrcloud:printer')

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
    const job = new Job(file, opts)
    this.job = job
    try {
      job.totalBytes = await stat(file).then((s) => s.size, (err: Error) => {
        throw new PrinterError('file', `cannot read ${basename(file)}: ${err.message}`)
      })
      await this.connect()
      if (!this.channel) throw new PrinterError('disconnected', this.lastError ?? `printer ${this.name} is not connected`)
      return await this.run(job, this.channel)
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
    if (!job || job.cancelRequested) return Promise.resolve()
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
    this.setState(job.cancelRequested ? 'cancelling' : job.paused ? 'paused' : 'printing')
    job.resendBase = ch.resends
    await ch.resetNumbering()
    const interval = this.c.temperatureIntervalMs
    job.nextPoll = Date.now() + interval
    this.report(job, true)
    try {
      for await (const c of readGcode(job.file)) {
        await this.checkpoint(job, ch)
        if (job.cancelRequested) break
        if (interval > 0 && Date.now() >= job.nextPoll) await this.poll(job, ch)
        await ch.transmit(c.command)
        job.linesSent++
        job.bytesSent = c.endOffset
        this.report(job, false)
      }
    } catch (err) {
      if (err instanceof PrinterError) throw err
      throw new PrinterError('file', `cannot read ${basename(job.file)}: ${(err as Error).message}`)
    }
    if (job.cancelRequested) {
      this.setState('cancelling')
      for (const command of this.c.cancelCommands) await ch.transmit(command)
    } else job.bytesSent = job.totalBytes
    const p = this.report(job, true)!
    const status = job.cancelRequested ? 'cancelled' : 'complete'
    log('%s: %s %s, %d lines in %d ms', this.name, status, job.file, p.linesSent, p.elapsedMs)
    const { state: _, ...counts } = p
    return { ...counts, status, linesPerSecond: p.elapsedMs > 0 ? Math.round(1000 * p.linesSent / p.elapsedMs) : 0 }
  }

  // between two lines: stay here while paused (polling temperatures), fail if the channel did
  private async checkpoint (job: Job, ch: Channel): Promise<void> {
    for (;;) {
      if (ch.failed) throw ch.failed
      if (job.cancelRequested || !job.paused) {
        job.parked = false
        return
      }
      job.parked = true
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

  private report (job: Job, force: boolean): PrintProgress | undefined {
    if (!job.reportDue(force)) return
    const p = this.progress!
    job.opts.onProgress?.(p)
    this.emit('progress', p)
    return p
  }

  private async doConnect (): Promise<void> {
    this.setState('connecting')
    const attempt = connectChannel({
      ...this.c,
      name: this.name,
      path: this.path,
      openLink: this.openLink,
      onTemperatures: (t) => { this.temperatures = t; this.emit('temperatures', t) },
      onFailure: (err) => { this.lastError = err.message; this.job?.wake() },
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
      if (!this.job) this.setState('idle') // a job that waited for this sets its own state
      log('%s: connected on %s', this.name, this.path)
    } catch (err) {
      this.setState(this.closing ? 'closed' : 'disconnected')
      throw this.failed(err as PrinterError)
    } finally {
      this.abortConnect = undefined
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
