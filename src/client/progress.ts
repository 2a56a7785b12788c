import { isatty } from 'node:tty'
import type { Progress } from './http.js'

/** Progress on a terminal: one line on stderr, rewritten in place. Off (all no-ops) when piped. */
export interface Reporter {
  readonly enabled: boolean
  /** bytes moved so far, with the rate since the transfer started */
  bytes (label: string, p: Progress): void
  /** a free-form state line, e.g. the task's status and progress */
  state (text: string): void
  /** clears the line */
  done (): void
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
export function formatBytes (n: number): string {
  let i = 0
  while (n >= 1024 && i < UNITS.length - 1) { n /= 1024; i++ }
  return `${i === 0 ? n : n.toFixed(1)} ${UNITS[i]}`
}

/**
 * Progress on `out` (default stderr) when it is a terminal. process.stderr is a stream made on first
 * use, which costs a run a few ms on a pipe: a run that shows nothing never makes it.
 */
export function createReporter (out?: NodeJS.WriteStream, enabled = out ? Boolean(out.isTTY) : isatty(2)): Reporter {
  const stream = () => (out ??= process.stderr)
  let started = 0
  let label = ''
  let last = 0
  let shown = false
  let lastState = ''
  const write = (line: string, force = false) => {
    const now = Date.now()
    if (!force && now - last < 100) return
    last = now
    const width = (stream().columns || 80) - 1
    stream().write(`\r\x1b[K${line.length > width ? line.slice(0, width) : line}`)
    shown = true
  }
  return {
    enabled,
    bytes (l, p) {
      if (!enabled) return
      if (l !== label) { label = l; started = Date.now() }
      const sec = Math.max((Date.now() - started) / 1000, 0.001)
      const total = p.total ? ` / ${formatBytes(p.total)} (${Math.floor(p.percent * 100)}%)` : ''
      write(`${l} ${formatBytes(p.transferred)}${total} ${formatBytes(p.transferred / sec)}/s`, p.percent === 1)
    },
    state (text) {
      if (!enabled || text === lastState) return
      lastState = text
      write(text, true)
    },
    done () {
      if (enabled && shown) stream().write('\r\x1b[K')
      shown = false
      label = ''
      lastState = ''
    },
  }
}
