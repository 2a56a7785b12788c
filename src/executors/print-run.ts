import { closeSync, openSync, readSync } from 'node:fs'
import type { RunHandle, RunResult } from './process.js'
import type { Printer, PrintProgress } from './printer/printer.js'
import type { Temperatures } from './printer/protocol.js'

/** `T:200.0/200 B:60.0/60`: temperatures as one short line. */
export const formatTemperatures = (t: Temperatures) =>
  Object.entries(t).map(([k, v]) => `${k}:${v.actual.toFixed(1)}/${v.target}`).join(' ')

export interface PrintReport {
  /** the task pauses and resumes with the printer (a pause from its screen, `;@pause` in the file) */
  status?: 'busy' | 'paused'
  progress: string
  percent: number
  linesSent: number
  bytesSent: number
  totalBytes: number
  temperatures?: string
}

export const printReport = (p: PrintProgress): PrintReport => ({
  ...(p.state === 'paused' ? { status: 'paused' } : p.state === 'printing' ? { status: 'busy' } : {}),
  progress: `${p.percent.toFixed(1)}% ${p.linesSent} lines${p.resends ? `, ${p.resends} resent` : ''}`,
  percent: Math.round(p.percent * 10) / 10,
  linesSent: p.linesSent,
  bytesSent: p.bytesSent,
  totalBytes: p.totalBytes,
  ...(Object.keys(p.temperatures).length ? { temperatures: formatTemperatures(p.temperatures) } : {}),
})

/**
 * A print job with the shape of a child process, so that the task runner treats both alike.
 * After timeoutMs (if given) the print is cancelled, which makes the printer safe, and reported as timed out.
 */
export function runPrint (printer: Printer, file: string, onProgress: (r: PrintReport) => void, timeoutMs?: number): RunHandle {
  let cancelled = false
  let timedOut = false
  const timer = timeoutMs ? setTimeout(() => { timedOut = true; printer.cancel().catch(() => {}) }, timeoutMs) : undefined
  const done = printer.print(file, { onProgress: (p) => onProgress(printReport(p)) }).then(
    (r): RunResult => {
      onProgress(printReport({ ...r, state: 'idle' }))
      return { exitCode: r.status === 'complete' ? 0 : null, signal: null, timedOut, cancelled: !timedOut && (cancelled || r.status === 'cancelled') }
    },
    (err: Error): RunResult => ({ exitCode: null, signal: null, timedOut, cancelled, error: `printer ${printer.name}: ${err.message}` }),
  ).finally(() => clearTimeout(timer))
  return {
    pid: undefined,
    done,
    cancel () { cancelled = true; printer.cancel().catch(() => {}) },
    pause () { printer.pause().catch(() => {}) },
    resume () { printer.resume() },
  }
}

const GCODE_LINE = /^\s*(?:[A-Za-z]\d|;|\(|%|$)/

/**
 * Looks at the start of a file (up to 64 KiB) and says why it is not G-code, or undefined:
 * a model or a binary sent to a printer by mistake should be refused, not streamed.
 */
export function notGcode (file: string): string | undefined {
  const fd = openSync(file, 'r')
  const buf = Buffer.alloc(64 << 10)
  const n = readSync(fd, buf, 0, buf.length, 0)
  closeSync(fd)
  const head = buf.subarray(0, n)
  if (n === 0) return 'the file is empty'
  if (head.includes(0)) return 'the file is binary'
  const lines = head.toString('latin1').split(/\r?\n/)
  if (n === buf.length) lines.pop() // may be cut in the middle
  const bad = lines.findIndex((l) => !GCODE_LINE.test(l))
  return bad < 0 ? undefined : `line ${bad + 1} is not G-code: "${lines[bad].slice(0, 40)}"`
}
