import { accessSync, constants, existsSync, readFileSync, readdirSync } from 'node:fs'
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { z } from 'zod'
import type { Limits, Sandbox, SandboxMode } from './sandbox.js'

/** Root of the installed package: `$root` in service descriptors. */
export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const builtinServicesDir = join(packageRoot, 'services')

/** One way of running a service: an executable and the fixed arguments it always gets. */
export interface Alternative { exe: string; args: string[] }

/** A service as described by a `services/NAME.conf` file (the seed's format, a few keys more). */
export interface ServiceDescriptor {
  name: string
  /** `process`: a tool run as a child process; `printer`: G-code streamed to a printer of the node */
  kind: 'process' | 'printer'
  file: string
  description: string
  alternatives: Alternative[]
  path: string[]
  input: string
  argInput: string[]
  fileIn: string
  minInputs: number
  maxInputs: number
  fileOut: string
  output: string
  timeout?: number
  env: Record<string, string>
  provides: string[]
  progress?: RegExp
  /**
   * output lines that say a file the model needs could not be opened (`missing`, any number of
   * them): a task whose output has one fails, even when the tool exits with 0
   */
  missing?: RegExp
  /** extra read-only paths the tool needs in its sandbox (`sandbox.ro`) */
  sandboxRo: string[]
  /** the tool runs task content as a program: offered only in a sandbox, unless --sandbox none (`sandbox = required`) */
  sandboxRequired: boolean
  /** limits of this tool (`limit.memory` MiB, `limit.cpu` s, `limit.fsize` MiB, `limit.procs`); the node's flags cap them */
  limits: Limits
  /** config keys that name programs (`deny`): a config input (one given with a prearg) that sets one is refused */
  deny: string[]
  /** results may come from the node's result cache (`cache = no`: a tool whose output differs from run to run) */
  cache: boolean
}

/** A descriptor checked against this machine: which executable would run, or why none can. */
export interface ResolvedService extends ServiceDescriptor {
  available: boolean
  exe?: string
  args: string[]
  reason?: string
}

export class ServiceConfigError extends Error {}

const NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/

const confSchema = z.object({
  kind: z.enum(['process', 'printer']).default('process'),
  cmd: z.string().default(''),
  description: z.string().default(''),
  path: z.string().default(''),
  input: z.string().default('$fileIn'),
  argInput: z.string().default(''),
  fileIn: z.string().regex(/^[a-z0-9]{0,8}$/i, 'an extension such as scad').default(''),
  inputs: z.string().regex(/^\d+(-\d+|\+)?$/, 'a count such as 1, 1-2 or 1+').default('1+'),
  fileOut: z.string().regex(/^\$id(\.[a-z0-9]{1,8})?$/i, '$id or $id.EXT').default('$id'),
  output: z.string().default(''),
  timeout: z.coerce.number().int().positive().optional(),
  provides: z.string().default(''),
  progress: z.string().optional(),
  sandbox: z.enum(['required', 'optional']).default('optional'),
  'sandbox.ro': z.string().default(''),
  'limit.memory': z.coerce.number().int().positive().optional(),
  'limit.cpu': z.coerce.number().int().positive().optional(),
  'limit.fsize': z.coerce.number().int().positive().optional(),
  'limit.procs': z.coerce.number().int().positive().optional(),
  deny: z.string().default(''),
  cache: z.enum(['yes', 'no']).default('yes'),
}).passthrough()

/** One `key = value` line of a descriptor, and its line number. */
export interface ConfLine { key: string; value: string; line: number }

/** The `key = value` lines of a descriptor; `#` starts a comment at line start or after a blank. */
export function confLines (text: string, file: string): ConfLine[] {
  const out: ConfLine[] = []
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/(^|\s)#.*$/, '').trim()
    if (line === '') return
    const eq = line.indexOf('=')
    if (eq <= 0) throw new ServiceConfigError(`${file}:${i + 1}: expected "key = value", got "${raw.trim()}"`)
    out.push({ key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim(), line: i + 1 })
  })
  return out
}

/** The keys of a descriptor; a key given twice keeps its last value. */
export function parseConf (text: string, file: string): Record<string, string> {
  return Object.fromEntries(confLines(text, file).map((l) => [l.key, l.value]))
}

/** A regular expression of a descriptor line, or an error that names the file and the line. */
function pattern (l: ConfLine, file: string): RegExp {
  try {
    return new RegExp(l.value)
  } catch (e) {
    throw new ServiceConfigError(`${file}:${l.line}: ${l.key}: ${(e as Error).message}`)
  }
}

/** The `missing` lines as one expression; one that matches an empty line would fail every task. */
function missingPattern (lines: ConfLine[], file: string): RegExp | undefined {
  const all = lines.filter((l) => l.key === 'missing' && l.value !== '')
  for (const l of all) {
    if (pattern(l, file).test('')) throw new ServiceConfigError(`${file}:${l.line}: missing: "${l.value}" matches an empty line`)
  }
  if (all.length <= 1) return all[0] && new RegExp(all[0].value)
  return new RegExp(all.map((l) => `(?:${l.value})`).join('|'))
}

const list = (s: string, sep: RegExp | string): string[] => s.split(sep).map((x) => x.trim()).filter(Boolean)

/** `$root`: the package's folder; `$node`: the Node.js that runs this node (for tools written in JavaScript). */
const expand = (s: string) => s.replaceAll('$root', packageRoot).replaceAll('$node', process.execPath)

/**
 * A descriptor's `env` for one run: `$task` becomes the tool's working folder as the tool sees
 * it (`/task` in the sandbox, the task's folder without one, the scratch folder of `--local`).
 */
export function taskEnv (env: Record<string, string>, taskDir: string): Record<string, string> {
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v.replaceAll('$task', taskDir)]))
}

/** Words of a command; `''` or `""` is an empty argument. */
const words = (s: string) => s.split(/\s+/).filter(Boolean).map((w) => w === "''" || w === '""' ? '' : w)

export function parseDescriptor (name: string, text: string, file: string): ServiceDescriptor {
  if (!NAME.test(name)) throw new ServiceConfigError(`${file}: service name "${name}" must be lower-case letters, digits, - or _`)
  const lines = confLines(text, file)
  const parsed = confSchema.safeParse(Object.fromEntries(lines.map((l) => [l.key, l.value])))
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new ServiceConfigError(`${file}: ${issue.path.join('.') || 'file'}: ${issue.message}`)
  }
  const c = parsed.data
  if (c.kind === 'process' && c.cmd === '') throw new ServiceConfigError(`${file}: cmd: Required (the executable to run)`)
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(c)) {
    if (k.startsWith('env.') && typeof v === 'string') env[k.slice(4)] = expand(v)
  }
  const [lo, hi] = c.inputs.endsWith('+')
    ? [Number(c.inputs.slice(0, -1)), Infinity]
    : c.inputs.includes('-') ? c.inputs.split('-').map(Number) : [Number(c.inputs), Number(c.inputs)]
  const argInput = list(c.argInput, ',')
  for (const a of argInput) {
    if (!a.endsWith('$fileIn')) throw new ServiceConfigError(`${file}: argInput "${a}" must end in $fileIn`)
  }
  if (c.output !== '' && c.output !== 'stdout' && !c.output.includes('$fileOut')) {
    throw new ServiceConfigError(`${file}: output must contain $fileOut, or be "stdout"`)
  }
  return {
    name,
    kind: c.kind,
    file,
    description: c.description,
    alternatives: list(c.cmd, '|').map((alt) => {
      const [exe, ...args] = words(expand(alt))
      return { exe, args }
    }),
    path: list(expand(c.path), ':'),
    input: c.input,
    argInput,
    fileIn: c.fileIn,
    minInputs: lo,
    maxInputs: hi,
    fileOut: c.fileOut,
    output: c.output,
    timeout: c.timeout,
    env,
    provides: list(c.provides, ','),
    progress: c.progress ? pattern(lines.filter((l) => l.key === 'progress').at(-1)!, file) : undefined,
    missing: missingPattern(lines, file),
    sandboxRo: list(expand(c['sandbox.ro']), ','),
    sandboxRequired: c.sandbox === 'required',
    limits: { memoryMiB: c['limit.memory'], cpuSec: c['limit.cpu'], fileMiB: c['limit.fsize'], procs: c['limit.procs'] },
    deny: list(c.deny, ','),
    cache: c.cache === 'yes',
  }
}

/** Loads every `*.conf` of the given folders; a later folder's service replaces an earlier one of the same name. */
export function loadDescriptors (dirs: string[]): ServiceDescriptor[] {
  const byName = new Map<string, ServiceDescriptor>()
  for (const dir of dirs) {
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.conf')).sort()) {
      const file = join(dir, f)
      byName.set(f.slice(0, -5), parseDescriptor(f.slice(0, -5), readFileSync(file, 'utf8'), file))
    }
  }
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name))
}

/** `exe` itself when it is a path, else the first of `dirs` that has it executable. */
export function findExecutable (exe: string, dirs: string[]): string | undefined {
  const candidates = isAbsolute(exe) ? [exe] : dirs.map((d) => join(d, exe))
  return candidates.find((p) => {
    try { accessSync(p, constants.X_OK); return true } catch { return false }
  })
}

/** Checks which alternative of a descriptor is installed here. */
export function resolveService (d: ServiceDescriptor, envPath = process.env.PATH ?? ''): ResolvedService {
  if (d.kind === 'printer') return { ...d, available: false, args: [], reason: 'no printer attached (rrcloud node --printer NAME=/dev/ttyUSB0)' }
  const dirs = [...d.path, ...list(envPath, delimiter)]
  for (const alt of d.alternatives) {
    const exe = findExecutable(alt.exe, dirs)
    // a script given by its path (`$node $root/.../cli.js`) must be there too
    if (exe && alt.args.every((a) => !isAbsolute(a) || existsSync(a))) return { ...d, available: true, exe, args: alt.args }
  }
  const names = d.alternatives.map((a) => a.exe).join(' or ')
  const hint = d.provides.length ? ` (install ${d.provides.join(' or ')})` : ''
  return { ...d, available: false, args: [], reason: `${names} not found${hint}` }
}

/** A service that runs task content as a program is not offered without a sandbox, unless `--sandbox none` asked for that. */
export function confine (s: ResolvedService, sb: Sandbox, asked: SandboxMode): ResolvedService {
  if (!s.available || !s.sandboxRequired || sb.mode !== 'none' || asked === 'none') return s
  return { ...s, available: false, reason: `runs task content as a program, and there is no sandbox here: ${sb.why ?? sb.note}` }
}

export function resolveAll (dirs: string[]): ResolvedService[] {
  return loadDescriptors(dirs).map((d) => resolveService(d))
}

/** The prefixes a client may send as prearg, from `argInput = --load=$fileIn, ...`. */
export function allowedPreargs (d: ServiceDescriptor): string[] {
  return d.argInput.map((a) => a.slice(0, -'$fileIn'.length))
}

/**
 * The first key of `deny` that a config sets to something (`post_process = /usr/bin/gzip`), as
 * `key = value`, or undefined. Configs are content: a program named in one must not run.
 */
export function deniedSetting (d: ServiceDescriptor, config: string): string | undefined {
  if (d.deny.length === 0) return undefined
  for (const line of config.split(/\r?\n/)) {
    const m = /^\s*([\w.-]+)\s*=\s*(.*?)\s*$/.exec(line)
    if (m && d.deny.includes(m[1]) && m[2] !== '' && m[2] !== '""' && m[2] !== "''") return `${m[1]} = ${m[2]}`
  }
  return undefined
}

export interface Composition { args: string[]; outFile?: string; stdoutTo?: string }

/**
 * Composes the argument vector the seed's way: `cmd prearg0+fileIn0 fileIn1 [output]`.
 * Inputs are paths the node chose; preargs must already be validated with allowedPreargs.
 */
export function compose (s: ResolvedService, id: string, inputs: Array<{ path: string; prearg?: string }>, outDir: string): Composition {
  const args = [...s.args]
  for (const i of inputs) {
    if (i.prearg !== undefined && i.prearg !== '') args.push(i.prearg + i.path)
    else args.push(...s.input.split(/\s+/).map((a) => a.replaceAll('$fileIn', i.path)))
  }
  if (s.output === '') return { args }
  const outFile = join(outDir, s.fileOut.replace('$id', id))
  if (s.output === 'stdout') return { args, outFile, stdoutTo: outFile }
  args.push(...s.output.split(/\s+/).map((a) => a.replaceAll('$fileOut', outFile)))
  return { args, outFile }
}
