import type { Temperatures } from './protocol.js'
import type { OpenLink } from './serial.js'

export type PrinterState = 'disconnected' | 'connecting' | 'idle' | 'printing' | 'paused' | 'cancelling' | 'halted' | 'closed'

/** Where a print stands; passed to onProgress and the `progress` event, and kept in `printer.progress`. */
export interface PrintProgress {
  file: string
  state: PrinterState
  /** commands of the file sent to the firmware (temperature polls not counted); with ADVANCED_OK up to its free buffer count may still await their `ok` */
  linesSent: number
  /** bytes of the file consumed up to the last acknowledged command */
  bytesSent: number
  totalBytes: number
  /** bytesSent / totalBytes, 0..100 */
  percent: number
  /** lines the firmware asked to have sent again */
  resends: number
  temperaturePolls: number
  temperatures: Temperatures
  elapsedMs: number
}

export interface PrintResult extends Omit<PrintProgress, 'state'> {
  status: 'complete' | 'cancelled'
  linesPerSecond: number
}

export interface PrintOptions {
  onProgress? (progress: PrintProgress): void
  /** at most one progress report per this many ms, besides the first and the last (default 500) */
  progressIntervalMs?: number
}

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
  /** silence while the `ok` of a short command is due before an M105 nudge provokes one (4000) */
  nudgeMs?: number
  /** the same for long commands (G28, M109, ...) and busy firmware; after a nudge, this much more fails the job (60000) */
  idleTimeoutMs?: number
  /** how long an unclassified `Error:` may wait for its resend request before the job fails (500) */
  errorGraceMs?: number
  /** what makes the printer safe when a print does not complete (heaters, fan, motors off) */
  cancelCommands?: string[]
  /** how long the firmware has to acknowledge cancelCommands before M112 is sent (3000) */
  safeTimeoutMs?: number
  /** G-code run after a pause has waited for the moves (M400), e.g. lift and move aside; resume puts the head back */
  park?: string[]
  /** how often a lost printer is looked for again; 0 never (2000) */
  reconnectMs?: number
  /**
   * lines sent ahead of their `ok` at most, where the firmware reports room (ADVANCED_OK); 1 turns
   * sending ahead off (default: as many as the firmware has room for). On a noisy link a line cut
   * by the firmware's flush after a rejected one can run as an unnumbered tail: 1 avoids it.
   */
  ahead?: number
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
  /** M112 now, unnumbered, whatever is in flight; the job fails and the firmware waits for a reset */
  emergencyStop (): void
  close (): Promise<void>
  on (event: 'state', listener: (state: PrinterState) => void): this
  on (event: 'progress', listener: (progress: PrintProgress) => void): this
  on (event: 'temperatures', listener: (t: Temperatures) => void): this
  off (event: string, listener: (...args: any[]) => void): this
}
