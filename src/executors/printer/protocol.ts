/** One heater's reading: current temperature and target (0 when off). */
export interface HeaterReading {
  actual: number
  target: number
}

/** Readings by heater name as the firmware reports them: `T`, `T0`, `T1`, `B`, `C`, ... */
export type Temperatures = Record<string, HeaterReading>

/**
 * How an `Error:` (or `!!`) line is to be taken, as OctoPrint's comm layer sorts them:
 * `resend` a transmission error the firmware follows with a resend request; `recoverable` the
 * firmware goes on (unknown command, SD card); `unknown` anything else, fatal unless a resend
 * request follows shortly.
 */
export type ErrorClass = 'resend' | 'recoverable' | 'unknown'

/**
 * What Marlin's ADVANCED_OK adds to an `ok`: `N` the line it answers (absent for unnumbered
 * commands), `P` free planner blocks, `B` free slots in the command queue (BUFSIZE), counting
 * the answered command as still there.
 */
export interface AdvancedOk { line?: number, planner: number, buffer: number }

export type Reply =
  | { kind: 'ok', temperatures?: Temperatures, advanced?: AdvancedOk }
  | { kind: 'resend', line: number }
  | { kind: 'error', message: string, class: ErrorClass }
  | { kind: 'fatal', message: string }
  | { kind: 'busy' }
  | { kind: 'wait' }
  | { kind: 'start' }
  | { kind: 'action', action: string }
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

// `ok N12 P15 B3`: the letters followed by digits, not `B:` (a bed temperature) or `P:` (a probe)
const ADVANCED = (letter: string) => new RegExp(`\\s${letter}(-?\\d+)(?=\\s|$)`)
const [N_WORD, P_WORD, B_WORD] = ['N', 'P', 'B'].map(ADVANCED)

function parseAdvancedOk (line: string): AdvancedOk | undefined {
  const b = B_WORD.exec(line)
  const p = P_WORD.exec(line)
  if (!b || !p) return undefined
  const n = N_WORD.exec(line)
  return { ...n && { line: Number(n[1]) }, planner: Number(p[1]), buffer: Number(b[1]) }
}

// Marlin `Resend: 12`, Teacup/Sprinter `rs N12` or `rs 12`, some firmwares `Resend:N12`
const RESEND = /^(?:resend|rs)\s*:?\s*N?:?\s*(\d+)/i
const COMMUNICATION = /line number|checksum|format error|expected line/i
const RECOVERABLE = /unknown command|volume\.init|openroot|workdir|error writing to file|cannot open|open failed|cannot enter|no media|not sd printing/i
// Marlin's kill() and stop(), thermal protection, Klipper's shutdown: the firmware has stopped
const HALTED = /halted|kill\(\) called|thermal runaway|heating failed|maxtemp|mintemp|stopped due to errors|use m999|shutdown/i

/** Classifies one line sent by the firmware (without its line ending). */
export function parseReply (raw: string): Reply {
  const line = raw.trim()
  if (line.startsWith('ok')) {
    const temperatures = parseTemperatures(line)
    const advanced = parseAdvancedOk(line)
    return { kind: 'ok', ...temperatures && { temperatures }, ...advanced && { advanced } }
  }
  const resend = RESEND.exec(line)
  if (resend) return { kind: 'resend', line: Number(resend[1]) }
  const bang = line.startsWith('!!')
  if (bang || /^error[: ]/i.test(line)) {
    const message = line.slice(bang ? 2 : 6).trim() || 'firmware halted (!!)'
    if (HALTED.test(message)) return { kind: 'fatal', message }
    if (COMMUNICATION.test(message)) return { kind: 'error', message, class: 'resend' }
    if (RECOVERABLE.test(message)) return { kind: 'error', message, class: 'recoverable' }
    // Marlin's `!!` is its fatal marker; Klipper also uses it for what the lists above name
    return bang ? { kind: 'fatal', message } : { kind: 'error', message, class: 'unknown' }
  }
  if (line.startsWith('echo:busy') || line.startsWith('busy:')) return { kind: 'busy' }
  // Repetier says `wait` when its buffer ran empty: whatever it was sent has been answered
  if (line === 'wait') return { kind: 'wait' }
  if (line.startsWith('start')) return { kind: 'start' }
  const action = /^(?:echo:)?\/\/\s*action:\s*(\S+)/.exec(line)
  if (action) return { kind: 'action', action: action[1].toLowerCase() }
  const temperatures = parseTemperatures(line)
  if (temperatures) return { kind: 'temperatures', temperatures }
  return { kind: 'other', text: line }
}

const word = (command: string) => /^([GM]\d+)(?!\d)/i.exec(command)?.[1].toUpperCase()

/** Commands during which Marlin waits without answering, until the target is reached or M108. */
export function isWaitCommand (command: string): boolean {
  return /^(M109|M190|M191|M0|M1)(?!\d)/.test(command)
}

const LONG = new Set(['G4', 'G28', 'G29', 'G32', 'G34', 'M0', 'M1', 'M109', 'M190', 'M191', 'M303', 'M400', 'M600'])

/** Commands known to keep the firmware from answering for long: a missing `ok` is not nudged early. */
export function isLongCommand (command: string): boolean {
  return LONG.has(word(command) ?? '')
}
