import { setTimeout as sleep } from 'node:timers/promises'
import { basename, dirname, extname, join, resolve } from 'node:path'
import { NodeError, nodeApi, type NodeApi, type PipelineBody, type PipelineStageBody, type PipelineView } from './api.js'
import { globalOptionLength, rewriteArgs, splitGlobal, type Input, type ServiceShape } from './args.js'
import { clientContext, type ClientContext } from './context.js'
import { ClientError, EXIT, usage } from './errors.js'
import { checkWritable } from './output.js'
import { createReporter, type Reporter } from './progress.js'
import { debugLog } from './log.js'
import { shippedShape } from './shipped.js'
import { hashTree, lacking, mapLimit, type TaskTree } from './tree.js'
import { firstNode } from './lookup.js'
import type { Server } from './servers.js'

const log = debugLog('rrcloud:pipe')

/** One stage as written: a service and its arguments as for `SERVICE.cloud` (without the previous stage's output). */
export interface StageArgs { service: string; args: string[] }

export interface PipeOptions {
  server?: string
  token?: string
  interface?: string
  notifier?: string
  /** run every tool even when a node holds the result */
  noCache?: boolean
  /** files or folders the models read that their references do not name */
  with?: string[]
  /** print `id: ID` and return once the pipeline is accepted */
  async?: boolean
  json?: boolean
  /** where the last stage's output goes */
  output?: string
}

/**
 * `rrcloud pipe [OPTIONS] SERVICE ARGS... -- SERVICE ARGS... -- ...`: the options before the first
 * service (the client's, `--async`, `-o FILE` for the last stage's output), then the stages.
 */
export function parsePipeArgv (argv: string[]): { opts: PipeOptions; stages: StageArgs[] } {
  const opts: PipeOptions = { with: [] }
  let i = 0
  const value = (a: string) => {
    const v = argv[++i]
    if (v === undefined) throw usage(`${a} needs a value`)
    return v
  }
  for (; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--async') { opts.async = true; continue }
    if (a === '--wait') continue
    if (a === '-o' || a === '--output') { opts.output = value(a); continue }
    const joined = /^(?:-o|--output=)(.+)$/.exec(a)
    if (joined) { opts.output = joined[1]; continue }
    const n = globalOptionLength(argv, i)
    if (n === 0) break
    const { opts: g } = splitGlobal(argv.slice(i, i + n))
    if (g.local) throw usage('--local: a pipeline runs on nodes; run each tool with --local instead')
    if (g.printer !== undefined) throw usage('--printer belongs to the printing stage: ... -- printrun --printer NAME')
    Object.assign(opts, {
      ...(g.server !== undefined ? { server: g.server } : {}),
      ...(g.token !== undefined ? { token: g.token } : {}),
      ...(g.interface !== undefined ? { interface: g.interface } : {}),
      ...(g.notifier !== undefined ? { notifier: g.notifier } : {}),
      ...(g.noCache ? { noCache: true } : {}),
      ...(g.json ? { json: true } : {}),
    })
    opts.with!.push(...g.with)
    i += n - 1
  }
  if (i >= argv.length) throw usage('no stage given: rrcloud pipe openscad part.scad -- slic3r --load=prusa.ini -- printrun --printer mk3')
  const stages: StageArgs[] = []
  let cur: string[] = []
  for (const a of [...argv.slice(i), '--']) {
    if (a !== '--') { cur.push(a); continue }
    if (cur.length === 0) throw usage('an empty stage: write rrcloud pipe SERVICE ARGS... -- SERVICE ARGS...')
    const [service, ...args] = cur
    if (service.startsWith('-')) throw usage(`${service}: a stage starts with a service name (openscad, slic3r, printrun, ...)`)
    stages.push({ service, args })
    cur = []
  }
  return { opts, stages }
}

const GCODE = /\.(gcode|gco|g|nc)$/i

/**
 * The stages that take `file` to a printer: a model is rendered (openscad, openjscad), sliced
 * with `slice` (slic3r --load=), then printed; an STL starts at slicing; G-code prints directly.
 */
export function stagesFor (file: string, o: { slice?: string; printer?: string } = {}): StageArgs[] {
  const print: StageArgs = { service: 'printrun', args: o.printer ? ['--printer', o.printer] : [] }
  const ext = extname(file).toLowerCase()
  if (GCODE.test(file)) return [{ service: 'printrun', args: [...print.args, file] }]
  const render: Record<string, string> = { '.scad': 'openscad', '.jscad': 'openjscad' }
  if (ext !== '.stl' && !render[ext]) throw usage(`cannot print ${file}: give a model (.scad, .jscad), an .stl or G-code (.gcode)`)
  if (!o.slice) throw usage(`${file} needs slicing before it prints: give a slicer config, --slice CONFIG.ini`)
  const slice: StageArgs = { service: 'slic3r', args: [`--load=${o.slice}`] }
  if (ext === '.stl') return [{ ...slice, args: [...slice.args, file] }, print]
  return [{ service: render[ext], args: [file] }, slice, print]
}

/** A stage as it will be sent: the files named in its arguments, what it keeps, its printer. */
interface StagePlan {
  service: string
  shape: ServiceShape
  inputs: Input[]
  /** its output is written here once the pipeline completes */
  keep?: string
  /** `keep` was named on the command line (not derived) */
  named?: boolean
  printer?: string
  with: string[]
}

/** The shape of a service shipped with rrcloud (src/client/shipped.ts), else from the first node that knows it. */
async function shapesOf (names: string[], ctx: ClientContext): Promise<Map<string, ServiceShape>> {
  const out = new Map<string, ServiceShape>()
  for (const n of new Set(names)) {
    const shape = await shippedShape(n)
    if (shape) out.set(n, shape)
  }
  const unknown = names.filter((n) => !out.has(n))
  if (unknown.length) {
    const { shapeFromInfo } = await import('./shapes.js')
    const { api, value: infos } = await firstNode(ctx, (a) => a.services())
    for (const n of unknown) {
      const info = infos.find((x) => x.name === n)
      if (!info) throw usage(`unknown service ${n}: ${api.server.url} offers ${infos.filter((x) => x.available).map((x) => x.name).join(', ') || 'none'}; see \`rrcloud services\``)
      out.set(n, shapeFromInfo(info))
    }
  }
  return out
}

function planStages (stages: StageArgs[], shapes: Map<string, ServiceShape>, opts: PipeOptions): StagePlan[] {
  const plans = stages.map((st, n): StagePlan => {
    const shape = shapes.get(st.service)!
    const { opts: g, rest } = splitGlobal(st.args)
    const misplaced = ['server', 'token', 'interface', 'notifier'].find((k) => g[k as keyof typeof g] !== undefined)
    if (misplaced || g.local || g.json || g.noCache) throw usage(`stage ${n + 1} (${st.service}): give the client's options (--s, --token, --json, ...) before the first stage`)
    let printer = g.printer
    // `printrun /dev/ttyUSB0`: the printer by its port, as printrun.cloud takes it
    if (shape.printer && printer === undefined && rest.length > (n === 0 ? 1 : 0) && !rest[0].startsWith('-') && !GCODE.test(rest[0])) printer = rest.shift()
    if (printer !== undefined && !shape.printer) throw usage(`stage ${n + 1}: --printer: ${st.service} does not print; printrun does`)
    const rw = rewriteArgs(shape, rest, process.cwd(), n === 0 ? 0 : 1)
    if (rw.explicitOutput && shape.printer) throw usage(`stage ${n + 1}: ${st.service} has no output to keep`)
    return { service: st.service, shape, inputs: rw.inputs, keep: rw.explicitOutput ? rw.output : undefined, named: rw.explicitOutput, printer, with: g.with }
  })
  const last = plans.at(-1)!
  if (opts.output !== undefined) {
    if (last.keep) throw usage(`the last stage's output is given twice (${last.keep} and ${opts.output})`)
    if (last.shape.printer) throw usage(`-o ${opts.output}: the last stage (${last.service}) has no output`)
    last.keep = resolve(opts.output)
    last.named = true
  } else if (!last.keep && !last.shape.printer && last.shape.output) {
    // as SERVICE.cloud does: next to the model, with the last service's extension (no extension: stdout)
    const model = plans[0].inputs.find((x) => !x.prearg) ?? plans[0].inputs[0]
    const ext = last.shape.fileOut.replace(/^\$id/, '')
    if (ext) {
      const derived = join(dirname(model.path), basename(model.path, extname(model.path)) + ext)
      last.keep = plans.some((p) => p.inputs.some((i) => i.path === derived)) ? derived.slice(0, -ext.length) + '.out' + ext : derived
    } else {
      last.keep = '-'
    }
  }
  if (opts.async) {
    const named = plans.find((p) => p.named)
    if (named) throw usage(`--async returns at once and writes no output (${named.keep}): \`rrcloud fetch ID\` writes the last one later`)
    for (const p of plans) delete p.keep
  }
  for (const p of plans) if (p.keep && p.keep !== '-') checkWritable(p.keep)
  return plans
}

/** Each stage's files with their digests: a model with what it reads, a print's G-code alone. */
async function treesOf (plans: StagePlan[], opts: PipeOptions): Promise<TaskTree[]> {
  const { projectOf } = await import('./project.js')
  return Promise.all(plans.map((p) => {
    if (p.inputs.length === 0) return { inputs: [], files: [], bytes: 0 }
    if (p.shape.printer) return hashTree(p.inputs.map((i) => ({ path: i.path, rel: basename(i.path) })), [])
    return projectOf(p.service, p.inputs, [...opts.with ?? [], ...p.with])
  }))
}

/** The stages as the driving node takes them: each later one's main input is the previous output, named after the model. */
function bodyOf (plans: StagePlan[], trees: TaskTree[], opts: PipeOptions): PipelineBody {
  const model = plans[0].inputs.find((x) => !x.prearg) ?? plans[0].inputs[0]
  const stem = basename(model.path, extname(model.path))
  const stages = plans.map((p, n): PipelineStageBody => {
    const t = trees[n]
    const own = t.inputs.map((f) => ({ sha256: f.sha256, path: f.rel, size: f.size, ...(f.prearg ? { prearg: f.prearg } : {}) }))
    const files = t.files.map((f) => ({ sha256: f.sha256, path: f.rel, size: f.size }))
    let inputs: PipelineStageBody['inputs'] = own
    if (n > 0) {
      const taken = new Set([...own.map((i) => i.path), ...files.map((f) => f.path)])
      let name = stem + plans[n - 1].shape.fileOut.replace(/^\$id/, '')
      while ([...taken].some((x) => x === name || x.startsWith(name + '/'))) name = `in-${name}`
      inputs = [...own.filter((i) => i.prearg), { from: 'previous', path: name }, ...own.filter((i) => !i.prearg)]
    }
    return { service: p.service, inputs, files, ...(p.printer ? { printer: p.printer } : {}) }
  })
  return { stages, ...(opts.noCache ? { cache: false as const } : {}), ...(opts.notifier ? { notifier: opts.notifier } : {}) }
}

/** A print stage with no printer named: the LAN's only printer, or an error listing them. */
async function namePrinters (plans: StagePlan[], ctx: ClientContext) {
  const open = plans.filter((p) => p.shape.printer && p.printer === undefined)
  if (!open.length) return
  const peers = (await ctx.source.peers()).filter((p) => open.some((x) => p.services.includes(x.service)))
  const printers = peers.flatMap((p) => (p.printers ?? []).map((x) => ({ ...x, node: p.name })))
  if (printers.length > 1) throw usage(`say which printer: printrun --printer NAME; printers: ${printers.map((x) => `${x.name} (${x.port}, ${x.state ?? '?'}) on ${x.node}`).join('; ')}`)
  for (const p of open) p.printer = printers[0]?.name
}

/** Nodes to drive the pipeline, best first: the node on this machine, else the scheduler's choice for the first stage. */
async function drivers (ctx: ClientContext, first: StagePlan): Promise<Server[]> {
  const peers = await ctx.source.peers()
  const out: Server[] = peers.filter((p) => p.local).map((p) => ({ url: p.url, name: p.name }))
  let ranked: Server[]
  try {
    ranked = await ctx.source.candidates(first.service, { printer: first.printer }, true)
  } catch (e) {
    if (!(e instanceof ClientError) || e.exit === EXIT.node) throw e
    // no node offers the first stage: the driver places it later, any node may drive
    ranked = await ctx.source.candidates()
  }
  for (const s of ranked) if (!out.some((x) => x.url === s.url)) out.push(s)
  return out
}

/** Uploads what the node lacks of every stage's files, then creates the pipeline there. */
async function create (api: NodeApi, trees: TaskTree[], body: PipelineBody, reporter: Reporter): Promise<PipelineView> {
  const all: TaskTree = { inputs: [], files: trees.flatMap((t) => [...t.inputs, ...t.files]), bytes: 0 }
  let missing = await api.missing([...new Set(all.files.map((f) => f.sha256))])
  for (let attempt = 0; ; attempt++) {
    const files = lacking(all, missing)
    const total = files.reduce((n, f) => n + f.size, 0)
    let done = 0
    await mapLimit(files, 4, async (f) => {
      let last = 0
      await api.putBlob(f.sha256, { path: f.path, name: f.rel, size: f.size, type: 'application/octet-stream' }, (p) => {
        done += p.transferred - last
        last = p.transferred
        reporter.bytes('upload', { transferred: done, total, percent: total ? done / total : 1 })
      })
    })
    try {
      return await api.createPipeline(body)
    } catch (err) {
      if (attempt > 0 || !(err instanceof NodeError) || err.status !== 409 || !Array.isArray(err.details?.missing)) throw err
      missing = err.details!.missing as string[]
    }
  }
}

/** `stage 2/3 slic3r on beta: busy 45% => Generating perimeters` */
export function describePipeline (v: PipelineView): string {
  const s = v.stages[Math.min(v.stage, v.stages.length - 1)]
  if (v.status !== 'running') return `pipeline ${v.id} ${v.status}`
  const state = s.state === 'waiting' ? 'placing' : s.state
  return `stage ${s.n}/${v.stages.length} ${s.service}${s.node ? ` on ${s.node}` : ''}: ${state}` +
    `${s.percent !== undefined ? ` ${Math.floor(s.percent)}%` : ''}${s.progress ? ` ${s.progress}` : ''}${v.cancelling ? ' (cancelling)' : ''}`
}

/** How long the driving node may not answer a waiting client before it gives up (the pipeline goes on there). */
const DRIVER_GONE_MS = 10_000

/** Shows the pipeline as it goes until it ends; gives up when its driving node stops answering. */
export async function follow (api: NodeApi, v: PipelineView, reporter: Reporter, interrupted: () => boolean): Promise<PipelineView> {
  let failing: number | undefined
  for (;;) {
    reporter.state(describePipeline(v))
    if (v.status !== 'running') return v
    try {
      v = await api.pipeline(v.id, 1)
      failing = undefined
    } catch (err) {
      if (!(err instanceof NodeError) || err.status !== undefined || interrupted()) throw err
      failing ??= Date.now()
      if (Date.now() - failing > DRIVER_GONE_MS) {
        throw new ClientError(`${api.server.name}, the node driving pipeline ${v.id}, stopped answering; the pipeline goes on when it is back: \`rrcloud info ${v.id}\``, EXIT.node)
      }
      await sleep(500)
    }
  }
}

/**
 * Runs stages as one pipeline, driven by one node: each stage on the best node, each output
 * passed to the next stage's node by digest, never through here. Synchronous unless `async`:
 * shows stage n/N, service, node, state and percent, then writes the outputs asked for. Returns
 * the exit status (0; the failed stage's tool's code, or 1; 130 when cancelled).
 *
 * `rrcloud print` calls it with `stagesFor(file, { slice, printer })`.
 */
export async function runPipeline (stages: StageArgs[], opts: PipeOptions = {}): Promise<number> {
  const ctx = clientContext({ server: opts.server, token: opts.token, interface: opts.interface })
  const reporter = createReporter()
  const plans = planStages(stages, await shapesOf([...new Set(stages.map((s) => s.service))], ctx), opts)
  await namePrinters(plans, ctx)
  const trees = await treesOf(plans, opts)
  const body = bodyOf(plans, trees, opts)
  const errors: NodeError[] = []
  let placed: { api: NodeApi; v: PipelineView } | undefined
  for (const server of await drivers(ctx, plans[0])) {
    const api = nodeApi(server, ctx.token)
    try {
      placed = { api, v: await create(api, trees, body, reporter) }
      break
    } catch (err) {
      reporter.done()
      // an older node does not drive pipelines (404/405); one that cannot be reached or fails: the next
      if (!(err instanceof NodeError) || !(err.retry || err.status === 404 || err.status === 405)) throw err
      log('%s: %s', server.url, err.message)
      errors.push(err)
    }
  }
  reporter.done()
  if (!placed) throw errors.length === 1 ? errors[0] : new ClientError(`no node took the pipeline:\n${errors.map((e) => `  ${e.message}`).join('\n')}`, EXIT.node)
  const { api } = placed
  let v = placed.v
  if (opts.async) {
    process.stdout.write(opts.json ? JSON.stringify(v, null, 2) + '\n' : `id: ${v.id}\n`)
    return 0
  }
  let interrupted = false
  const cancel = () => {
    if (interrupted) process.exit(EXIT.interrupted)
    interrupted = true
    reporter.done()
    process.stderr.write(`\nrrcloud: cancelling pipeline ${v.id} on ${api.server.name} (Ctrl-C again to leave it running)\n`)
    api.cancelPipeline(v.id).catch((e) => log('cancel: %s', e))
  }
  process.on('SIGINT', cancel)
  try {
    v = await follow(api, v, reporter, () => interrupted)
  } finally {
    process.off('SIGINT', cancel)
    reporter.done()
  }
  if (v.status === 'complete') {
    for (const [i, p] of plans.entries()) {
      if (!p.keep) continue
      await api.downloadStage(v.id, i + 1, p.keep === '-' ? process.stdout : p.keep, (x) => reporter.bytes('download', x))
      reporter.done()
    }
    if (opts.json) process.stdout.write(JSON.stringify(v, null, 2) + '\n')
    return 0
  }
  if (v.failedLog) process.stderr.write(v.failedLog.endsWith('\n') ? v.failedLog : v.failedLog + '\n')
  process.stderr.write(`rrcloud: pipeline ${v.id} on ${api.server.name} ${v.status}${v.error ? `: ${v.error}` : ''}\n`)
  if (v.status === 'cancelled') return EXIT.interrupted
  return typeof v.exitCode === 'number' && v.exitCode > 0 ? v.exitCode : EXIT.failed
}

/** `rrcloud pipe ARGV...` */
export async function pipe (argv: string[]): Promise<number> {
  const { opts, stages } = parsePipeArgv(argv)
  return runPipeline(stages, opts)
}
