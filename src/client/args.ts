import { statSync } from 'node:fs'
import { basename, dirname, extname, join, resolve } from 'node:path'
import { usage } from './errors.js'

/** What the client needs to know about a service to rewrite a command line for it. */
export interface ServiceShape {
  name: string
  /** prefixes an input may carry, e.g. `--load=` (argInput) */
  preargs: string[]
  /** how the tool is told its output: `-o$fileOut`, `--output=$fileOut`, `-o $fileOut`, `stdout` or '' */
  output: string
  /** `$id` or `$id.EXT` */
  fileOut: string
  minInputs: number
  maxInputs: number
  /** a prefix the tool wants before each input (povray: `+I`), accepted and dropped */
  inputPrefix?: string
  /** runs on a printer attached to a node (printrun) */
  printer?: boolean
}

/** The client's own options, accepted before or among the tool's arguments (up to `--`). */
export interface GlobalOptions {
  server?: string
  token?: string
  notifier?: string
  /** printer services: the printer, by name or port path */
  printer?: string
  /** interface (name or IPv4) to look for nodes on */
  interface?: string
  local: boolean
  /** with no node found, fail rather than run the tool on this machine */
  noLocalFallback: boolean
  wait: boolean
  json: boolean
  /** files or folders of the model that the scan of its references cannot see (`--with`, repeatable) */
  with: string[]
  /** run the tool even when a node holds the result of the same work */
  noCache: boolean
}

const VALUED: Record<string, keyof GlobalOptions> = {
  '--s': 'server', '--server': 'server', '--token': 'token', '--notifier': 'notifier', '--printer': 'printer', '--interface': 'interface',
  '--with': 'with',
}
const SWITCHES: Record<string, keyof GlobalOptions> = { '--local': 'local', '--no-local-fallback': 'noLocalFallback', '--wait': 'wait', '--json': 'json', '--no-cache': 'noCache' }
/** valued options that may be given more than once */
const LISTS = new Set<keyof GlobalOptions>(['with'])

/** Length of the global option at argv[i] (1 or 2 words), or 0 if argv[i] is not one. */
export function globalOptionLength (argv: string[], i: number): number {
  const a = argv[i]
  if (SWITCHES[a]) return 1
  const eq = a.indexOf('=')
  if (eq > 0 && VALUED[a.slice(0, eq)]) return 1
  if (VALUED[a]) return 2
  return 0
}

/** Takes the client's options out of argv; what is left belongs to the service. */
export function splitGlobal (argv: string[], leadingOnly = false): { opts: GlobalOptions; rest: string[] } {
  const opts: GlobalOptions = { local: false, noLocalFallback: false, wait: false, json: false, with: [], noCache: false }
  const rest: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--') { rest.push(...argv.slice(i + 1)); break }
    const n = leadingOnly && rest.length ? 0 : globalOptionLength(argv, i)
    if (n === 0) { rest.push(a); continue }
    if (SWITCHES[a]) { (opts[SWITCHES[a]] as boolean) = true; continue }
    const eq = a.indexOf('=')
    const key = VALUED[eq > 0 ? a.slice(0, eq) : a]
    const value = eq > 0 ? a.slice(eq + 1) : argv[++i]
    if (value === undefined) throw usage(`${a} needs a value, e.g. ${a}=VALUE`)
    if (LISTS.has(key)) (opts[key] as string[]).push(value)
    else (opts[key] as string) = value
  }
  return { opts, rest }
}

export interface Input { path: string; prearg?: string }
export interface Rewritten {
  inputs: Input[]
  /** where the result goes; undefined: to stdout */
  output?: string
  /** the output was named on the command line (not derived from the input) */
  explicitOutput: boolean
}

/** The ways a user may name the output: `-oX`, `-o X`, `--output=X`, `--output X`, and the service's own. */
function outputForms (s: ServiceShape): Array<{ flag: string, joined: boolean }> {
  const forms = [{ flag: '-o', joined: true }, { flag: '-o', joined: false }, { flag: '--output=', joined: true }, { flag: '--output', joined: false }]
  const own = /^(\S+?)(\s*)\$fileOut$/.exec(s.output)
  if (own) forms.push({ flag: own[1], joined: own[2] === '' })
  return forms
}

const outExt = (s: ServiceShape) => s.fileOut.replace(/^\$id/, '')

/**
 * Rewrites a seed command line (`--load=prusa.conf huge.stl --output=huge.gcode`) into what the
 * node takes: input files with their preargs, and a local path for the result.
 */
export function rewriteArgs (s: ServiceShape, args: string[], cwd = process.cwd(), given = 0): Rewritten {
  const inputs: Input[] = []
  let output: string | undefined
  const setOutput = (v: string, arg: string) => {
    if (!v) throw usage(`${arg}: the output file name is missing`)
    if (output !== undefined) throw usage(`the output is given twice (${output} and ${v})`)
    output = resolve(cwd, v)
  }
  const forms = outputForms(s)
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    const sep = forms.find((f) => !f.joined && a === f.flag)
    if (sep) { setOutput(args[++i] ?? '', a); continue }
    const joined = forms.find((f) => f.joined && a.startsWith(f.flag) && a.length > f.flag.length)
    if (joined) { setOutput(a.slice(joined.flag.length), a); continue }
    const pre = s.preargs.find((p) => a.startsWith(p) && a.length > p.length)
    if (pre) { inputs.push({ path: a.slice(pre.length), prearg: pre }); continue }
    const preSep = s.preargs.find((p) => p.endsWith('=') && a === p.slice(0, -1))
    if (preSep && args[i + 1] !== undefined) { inputs.push({ path: args[++i], prearg: preSep }); continue }
    if (s.inputPrefix && a.startsWith(s.inputPrefix) && a.length > s.inputPrefix.length) { inputs.push({ path: a.slice(s.inputPrefix.length) }); continue }
    if (/^[-+]./.test(a)) {
      const allowed = [...s.preargs.map((p) => `${p}FILE`), ...(s.output && s.output !== 'stdout' ? ['-oFILE'] : [])]
      throw usage(`${a}: only input files${allowed.length ? ` (and ${allowed.join(', ')})` : ''} can be given to ${s.name} on a node; the tool's other options cannot be passed on`)
    }
    inputs.push({ path: a })
  }
  for (const inp of inputs) {
    const full = resolve(cwd, inp.path)
    let st
    try { st = statSync(full) } catch {}
    if (!st) throw usage(`input file ${inp.path} not found${inp.path === full ? '' : ` (in ${cwd})`}`)
    if (!st.isFile()) throw usage(`input ${inp.path} is not a file`)
    inp.path = full
  }
  // `given`: inputs that come by other means (the previous stage's output in a pipeline)
  if (inputs.length + given === 0) throw usage(`no input file given: ${s.name} FILE...`)
  if (inputs.length + given < s.minInputs || inputs.length + given > s.maxInputs) {
    const want = s.minInputs === s.maxInputs ? s.minInputs : Number.isFinite(s.maxInputs) ? `${s.minInputs} to ${s.maxInputs}` : `at least ${s.minInputs}`
    throw usage(`${s.name} takes ${want} input file(s), got ${inputs.length}${given ? ` and the previous stage's output` : ''}`)
  }
  if (output !== undefined) return { inputs, output, explicitOutput: true }
  const model = inputs.find((x) => !x.prearg) ?? inputs[0]
  const ext = outExt(s)
  if (!ext || !model) return { inputs, explicitOutput: false }
  let derived = join(dirname(model.path), basename(model.path, extname(model.path)) + ext)
  // never write over an input (echo.txt → echo.out.txt)
  if (inputs.some((x) => x.path === derived)) derived = derived.slice(0, -ext.length) + '.out' + ext
  return { inputs, output: derived, explicitOutput: false }
}
