import type { Channel } from './channel.js'
import type { Temperatures } from './protocol.js'

export interface Position { X: number, Y: number, Z: number, E: number }

/** Where the head was and what the heaters aimed at when the print was parked. */
export interface Parked { position?: Position, targets: Temperatures }

const word = (command: string) => /^([GM]\d+)(?!\d)/i.exec(command)?.[1].toUpperCase()

/** The modes and feed rate the file has set so far: what a parked print must get back. */
export class MotionState {
  relative = false
  relativeE = false
  feed?: number

  track (command: string): void {
    const w = word(command)
    if (w === 'G90') this.relative = false
    else if (w === 'G91') this.relative = true
    else if (w === 'M82') this.relativeE = false
    else if (w === 'M83') this.relativeE = true
    else if (w === 'G0' || w === 'G1') {
      const f = /\bF(\d+(?:\.\d+)?)/i.exec(command)
      if (f) this.feed = Number(f[1])
    }
  }
}

/** `X:10.00 Y:20.00 Z:0.30 E:1.20 Count X:800 ...` (M114), the part before `Count`. */
export function parsePosition (lines: string[]): Position | undefined {
  for (const line of lines) {
    const head = line.split('Count')[0]
    const get = (axis: string) => {
      const m = new RegExp(`\\b${axis}:\\s*(-?\\d+(?:\\.\\d+)?)`).exec(head)
      return m ? Number(m[1]) : undefined
    }
    const [X, Y, Z, E] = ['X', 'Y', 'Z', 'E'].map(get)
    if (X !== undefined && Y !== undefined && Z !== undefined) return { X, Y, Z, E: E ?? 0 }
  }
  return undefined
}

/** Waits for the moves already sent (M400), notes position and targets, runs the park G-code. */
export async function park (ch: Channel, commands: string[], temperatures: Temperatures): Promise<Parked | undefined> {
  await ch.transmit('M400')
  if (commands.length === 0) return undefined
  const position = parsePosition(await ch.query('M114'))
  const targets = structuredClone(temperatures)
  for (const c of commands) await ch.transmit(c)
  return { position, targets }
}

const fmt = (n: number) => String(Math.round(n * 1000) / 1000)

/**
 * What brings a parked print back: heaters to their targets (waiting for them), the head over
 * its place then down to it, the extruder position, then the file's own modes and feed rate.
 */
export function unparkCommands (p: Parked, motion: MotionState, travelFeed = 3000, zFeed = 600): string[] {
  const out: string[] = []
  const hotend = p.targets.T ?? p.targets.T0
  const bed = p.targets.B
  if (hotend?.target) out.push(`M104 S${fmt(hotend.target)}`)
  if (bed?.target) out.push(`M140 S${fmt(bed.target)}`)
  if (hotend?.target) out.push(`M109 S${fmt(hotend.target)}`)
  if (bed?.target) out.push(`M190 S${fmt(bed.target)}`)
  if (p.position) {
    const { X, Y, Z, E } = p.position
    out.push('G90', `G1 X${fmt(X)} Y${fmt(Y)} F${travelFeed}`, `G1 Z${fmt(Z)} F${zFeed}`, `G92 E${fmt(E)}`)
    if (motion.relative) out.push('G91')
    if (motion.relativeE) out.push('M83')
  }
  if (motion.feed) out.push(`G1 F${fmt(motion.feed)}`)
  return out
}
