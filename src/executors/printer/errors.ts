export type PrinterErrorCode =
  | 'busy' // a job is already running on this printer
  | 'closed' // the printer component was closed
  | 'open-failed' // the serial port could not be opened
  | 'connect-timeout' // nothing that looks like firmware answered in time
  | 'disconnected' // the port went away (cable, power, board reset)
  | 'firmware-error' // `Error:` without a resend request, `!!`, a halt
  | 'halted' // the firmware halted (or was stopped with M112) and waits for a reset
  | 'reset' // the firmware restarted during a job
  | 'timeout' // the firmware stopped answering
  | 'protocol' // the firmware asked for something the host cannot honour
  | 'file' // the G-code file could not be read

/** The one error type of the printer component: a stable `code` and a message a user can act on. */
export class PrinterError extends Error {
  readonly code: PrinterErrorCode

  constructor (code: PrinterErrorCode, message: string) {
    super(message)
    this.name = 'PrinterError'
    this.code = code
  }
}
