/** One heater's reading: current temperature and target (0 when off). */
export interface HeaterReading {
  actual: number
  target: number
}

/** Readings by heater name as the firmware reports them: `T`, `T0`, `T1`, `B`, `C`, ... */
export type Temperatures = Record<string, HeaterReading>

export type Reply =
  | { kind: 'ok', temperatures?: Temperatures }
  | { kind: 'resend', line: number }
  | { kind: 'error', message: string }
  | { kind: 'fatal', message: string }
  | { kind: 'busy' }
  | { kind: 'start' }
  | { kind: 'temperatures', temperatures: Temperatures }
  | { kind: 'other', text: string }

// `T:20.0 /0.0`, `T0:200.1 /200.0`, `B:60.0 /60.0`; skips `@:0`, `B@:0`, `W:?`
const TEMP = /(?:^|\s)(T\d*|B|C|P):\s*(-?\d+(?:\.\d+)?)(?:\s*\/\s*(-?\d+(?:\.\d+)?))?/g

export function parseTemperatures (line: string): Temperatures | undefined {
  let found: Temperatures | undefined
  for (const m of line.matchAll(TEMP)) {
    found ??= {}
    found[m[1]] = { actual: Number(m[2]), target: m[3] === undefined ? 0 : Number(m[3]) }
  }
  return found
}

// Marlin `Resend: 12`, Teacup/Sprinter `rs N12` or `rs 12`, some firmwares `Resend:N12`
const RESEND = /^(?:resend|rs)\s*:?\s*N?:?\s*(\d+)/i

/** Classifies one line sent by the firmware (without its line ending). */
export function parseReply (raw: string): Reply {
  const line = raw.trim()
  if (line.startsWith('ok')) {
    const temperatures = parseTemperatures(line)
    return temperatures ? { kind: 'ok', temperatures } : { kind: 'ok' }
  }
  const resend = RESEND.exec(line)
  if (resend) return { kind: 'resend', line: Number(resend[1]) }
  if (line.startsWith('Error:') || line.startsWith('Error ')) return { kind: 'error', message: line.slice(6).trim() }
  if (line.startsWith('!!')) return { kind: 'fatal', message: line.slice(2).trim() || 'firmware halted (!!)' }
  if (line.startsWith('echo:busy') || line.startsWith('busy:')) return { kind: 'busy' }
  if (line.startsWith('start')) return { kind: 'start' }
  const temperatures = parseTemperatures(line)
  if (temperatures) return { kind: 'temperatures', temperatures }
  return { kind: 'other', text: line }
}

/** Commands during which Marlin waits without answering, until the target is reached or M108. */
export function isWaitCommand (command: string): boolean {
  return /^(M109|M190|M191|M0|M1)(?!\d)/.test(command)
}
