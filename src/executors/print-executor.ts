import { appendFileSync } from 'node:fs'
import type { ExecEnd, Executor } from './executor.js'
import { notGcode, runPrint } from './print-run.js'
import type { Printer } from './printer/printer.js'

/** Prints on one printer of this node: its G-code is streamed by the node itself, one job at a time. */
export function createPrintExecutor (printer: Printer): Executor {
  return {
    plan (_id, inputs) {
      return { cmd: `print ${inputs[0].name} on ${printer.name} (${printer.path})` }
    },
    async refuse (inputs) {
      const why = notGcode(inputs[0].host)
      return why && `fileIn0 cannot be printed: ${why}`
    },
    start (job) {
      let last = ''
      const h = runPrint(printer, job.inputs[0].host, (r) => { last = r.progress; job.onUpdate({ ...r }) }, job.timeoutMs)
      const done = h.done.then((r): ExecEnd => {
        const end: ExecEnd = r.timedOut ? { status: 'failed', error: `timed out after ${Math.round(job.timeoutMs! / 1000)} s; the printer was made safe` }
          : r.cancelled ? { status: 'cancelled' }
          : r.error ? { status: 'failed', error: r.error }
            : r.exitCode === 0 ? { status: 'complete' } : { status: 'failed', error: `printer ${printer.name}: the print did not complete` }
        // the log of a print is its ending: what the firmware said is in the printer's own log
        try { appendFileSync(job.logFile, `${end.status}: ${end.error ?? last}\n`) } catch {}
        return end
      })
      return { done, cancel: () => h.cancel(), pause: () => h.pause(), resume: () => h.resume() }
    },
  }
}
