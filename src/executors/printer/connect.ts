import { Channel } from './channel.js'
import { PrinterError } from './errors.js'
import type { Temperatures } from './protocol.js'
import type { Link, OpenLink } from './serial.js'

export interface ConnectOptions {
  name: string
  path: string
  baudRate: number
  connectTimeoutMs: number
  probeIntervalMs: number
  settleMs: number
  nudgeMs: number
  idleTimeoutMs: number
  errorGraceMs: number
  /** lines sent ahead of their ok at most (PrinterConfig.ahead) */
  ahead: number
  openLink: OpenLink
  onTemperatures (t: Temperatures): void
  onFailure (err: PrinterError): void
  onReset (): void
  onAction (action: string): void
  /** the port closed by itself, during the handshake or any time later */
  onLost (channel: Channel, reason: string): void
}

export interface Connecting {
  done: Promise<{ channel: Channel, link: Link }>
  /** gives up: `done` rejects with err */
  abort (err: PrinterError): void
}

/** Opens the port and waits until firmware answers and line numbers are reset (M110 N0). */
export function connectChannel (o: ConnectOptions): Connecting {
  let aborted: PrinterError | undefined
  let abortStep: (err: PrinterError) => void = () => {}
  const done = (async () => {
    const box: { ch?: Channel } = {}
    let link: Link
    try {
      link = await o.openLink({
        path: o.path,
        baudRate: o.baudRate,
        onLine: (line) => box.ch?.handleLine(line),
        onClose: (reason) => { if (box.ch) o.onLost(box.ch, reason) },
      })
    } catch (err) {
      throw new PrinterError('open-failed', `cannot open ${o.path}: ${(err as Error).message}`)
    }
    const ch = box.ch = new Channel(link, {
      name: o.name,
      nudgeMs: o.nudgeMs,
      idleTimeoutMs: o.idleTimeoutMs,
      errorGraceMs: o.errorGraceMs,
      ahead: o.ahead,
      extraOkMs: Math.min(3000, o.idleTimeoutMs),
      onTemperatures: o.onTemperatures,
      onFailure: o.onFailure,
      onReset: o.onReset,
      onAction: o.onAction,
    })
    try {
      if (aborted) throw aborted
      await handshake(ch, o, (abort) => { abortStep = abort })
      if (aborted) throw aborted
      return { channel: ch, link }
    } catch (err) {
      ch.close()
      await link.close()
      throw err instanceof PrinterError ? err : new PrinterError('open-failed', (err as Error).message)
    }
  })()
  return {
    done,
    abort (err) {
      aborted ??= err
      abortStep(err)
    },
  }
}

// `start` (the board booted) or any answer to an M105 probe means firmware is listening; the
// quiet time lets answers to earlier probes arrive before M110, so none is taken for its `ok`
async function handshake (ch: Channel, o: ConnectOptions, setAbort: (abort: (err: PrinterError) => void) => void): Promise<void> {
  const timeoutError = new PrinterError('connect-timeout',
    `no answer from a printer on ${o.path} within ${o.connectTimeoutMs / 1000} s (is it powered, at ${o.baudRate} baud?)`)
  let timer: NodeJS.Timeout | undefined
  let prober: NodeJS.Timeout | undefined
  let quiet: NodeJS.Timeout | undefined
  try {
    await new Promise<void>((resolve, reject) => {
      setAbort(reject)
      timer = setTimeout(() => reject(timeoutError), o.connectTimeoutMs)
      let seen = false
      ch.tap = (r) => {
        if (!seen && (r.kind === 'start' || r.kind === 'ok' || r.kind === 'temperatures')) {
          seen = true
          clearInterval(prober)
        }
        if (seen) {
          clearTimeout(quiet)
          quiet = setTimeout(resolve, o.settleMs)
        }
      }
      const probe = () => ch.sendOutOfBand('M105', false)
      prober = setInterval(probe, o.probeIntervalMs)
      probe()
    })
    ch.tap = undefined
    clearTimeout(timer)
    setAbort((err) => ch.fail(err))
    timer = setTimeout(() => ch.fail(timeoutError), o.connectTimeoutMs)
    await ch.resetNumbering()
  } finally {
    ch.tap = undefined
    clearTimeout(timer)
    clearInterval(prober)
    clearTimeout(quiet)
  }
}
