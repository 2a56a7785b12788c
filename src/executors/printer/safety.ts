import debug from 'debug'
import type { Channel } from './channel.js'
import { PrinterError } from './errors.js'
import { isWaitCommand } from './protocol.js'

const log = debug('rrcloud:printer:safety')

/** What makeSafe() achieved: the firmware acknowledged the commands, or M112 went out after them. */
export type SafeOutcome = 'acknowledged' | 'emergency-stop'

export interface SafeOptions {
  name: string
  /** heaters, fan and motors off (M104 S0, M140 S0, M107, M84) */
  commands: string[]
  /** how long the firmware has to acknowledge them before M112 is sent */
  timeoutMs: number
  /** as numbered lines, when the protocol works and no line is in flight */
  numbered: boolean
}

/**
 * Makes the printer safe after a print that did not complete. Whatever state the protocol is in,
 * the commands reach the wire: numbered while the channel works, else unnumbered and without
 * waiting (Marlin runs unnumbered lines unchecked). A firmware that acknowledges none of it within
 * timeoutMs gets M112. Never rejects; bounded by about 3 × timeoutMs.
 */
export async function makeSafe (ch: Channel, o: SafeOptions): Promise<SafeOutcome> {
  // M109/M190 would keep the firmware deaf until the target is reached (M108 needs EMERGENCY_PARSER)
  const interrupt = ch.inFlight !== undefined && isWaitCommand(ch.inFlight)
  if (interrupt) ch.writeRaw('M108')
  if (o.numbered && !ch.failed && !ch.inFlight) {
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((resolve, reject) => {
      timer = setTimeout(() => reject(ch.fail(new PrinterError('timeout', `printer ${o.name} did not acknowledge the safety commands`))), o.timeoutMs)
    })
    try {
      await Promise.race([(async () => { for (const c of o.commands) await ch.transmit(c) })(), deadline])
      return 'acknowledged'
    } catch (err) {
      log('%s: numbered safety commands failed (%s); sending them unnumbered', o.name, (err as Error).message)
    } finally {
      clearTimeout(timer)
    }
  }
  // the lines in flight and M108 are answered too, before the last safety command. An `ok` already
  // taken as a resend request's may have been a line's: the firmware is alive once the `ok`s certain
  // to come have come, and the one that may still come is given a short grace.
  const extra = interrupt ? 1 : 0
  const start = ch.oks
  const certain = o.commands.length + ch.oksDue + extra
  const most = o.commands.length + ch.unacknowledged + extra
  for (const c of o.commands) ch.writeRaw(c)
  if (await ch.whenOks(certain - (ch.oks - start), o.timeoutMs)) {
    if (most > certain) await ch.whenOks(most - (ch.oks - start), Math.min(o.timeoutMs, 1000))
    return 'acknowledged'
  }
  log('%s: no acknowledgement of the safety commands: M112', o.name)
  ch.writeRaw('M112')
  return 'emergency-stop'
}
