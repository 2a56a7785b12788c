import { createPrinter, type Printer, type PrinterConfig } from '../executors/printer/printer.js'
import { formatTemperatures } from '../executors/print-run.js'
import type { PrinterSpec } from './node.js'

/** The node's printers by name, connecting now so that meta shows their state; their changes are logged. */
export function openPrinters (specs: PrinterSpec[], options: Partial<PrinterConfig> | undefined, log: (line: string) => void): Map<string, Printer> {
  const printers = new Map<string, Printer>()
  for (const p of specs) {
    if (printers.has(p.name)) throw new Error(`two printers named ${p.name}`)
    printers.set(p.name, createPrinter({ ...options, ...p }))
  }
  for (const p of printers.values()) {
    // connect early so that meta shows the printer's state; a print connects again if this failed
    p.connect().then(() => log(`printer ${p.name} on ${p.path}: connected`), (e: Error) => log(`printer ${p.name} on ${p.path}: ${e.message}`))
    // a lost printer is looked for again by the printer itself: tell what becomes of it
    p.on('state', (s) => { if (s === 'disconnected' || s === 'halted') log(`printer ${p.name}: ${s}${p.lastError ? `: ${p.lastError}` : ''}`) })
  }
  return printers
}

/** The printers as meta shows them. */
export function listPrinters (printers: Map<string, Printer>) {
  return [...printers.values()].map((p) => ({
    name: p.name, port: p.path, state: p.state,
    ...(Object.keys(p.temperatures).length ? { temperatures: formatTemperatures(p.temperatures) } : {}),
    ...(p.lastError ? { lastError: p.lastError } : {}),
  }))
}

/** M112 on a printer, by name or port path; undefined when there is no such printer. */
export function emergencyStop (printers: Map<string, Printer>, want: string, log: (line: string) => void) {
  const p = [...printers.values()].find((x) => x.name === want || x.path === want)
  if (!p) return undefined
  p.emergencyStop()
  log(`printer ${p.name}: emergency stop (M112) on request`)
  return { name: p.name, port: p.path, state: p.state, sent: 'M112' }
}
