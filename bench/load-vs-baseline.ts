// The node under load, side by side with a bare koa + @koa/multer server that stores each upload,
// runs `cat` on it and replies (bench/baselines/koa-spawn.mjs): the same N keep-alive clients POST
// a small echo task in a loop, and a client that is refused (503) asks again at once. Contenders
// run one after the other in each round, their order rotating from round to round; each is a
// process of its own, this process only generates the load. The node runs with its default flags
// (slots = cores, --max-queue 1000, --nice 10, sandbox auto), plus --no-mdns and a temp data dir.
//
// Per contender and round: completed runs/s while the load lasts (the baseline: its replies; the
// node: tasks that ended complete within the window, by their etime), accepted/s, refused/s, the
// server's CPU (the node, and its spawn helper with the tools it waited for), latency. For the node
// also the rate at which it drains its queue once the load stops. "CPU per refused request" comes
// from a node that refuses every task at once (--max-queue 0 --queue-wait 0) under the same load.
//
//   npm run build && node --import tsx bench/load-vs-baseline.ts [--clients 32] [--seconds 10]
//     [--warmup 3] [--rounds 3] [--bin bin/run.js] [--before OLD/bin/run.js] [--no-none]
//     [--node-args='...'] [--exec-argv='--cpu-prof --cpu-prof-dir=DIR'] [--json FILE]
//   --before adds a contender: another build of the node, with the same flags (a before/after run).
//   --also='FLAGS' (repeatable) adds a contender: the node with these flags too, e.g. --also='--nice 0'.
//   --no-none leaves out the node with --sandbox none. --exec-argv: node options for the nodes only.
// A node is measured in its steady state under this load: its warm-up lasts until its queue is
// full (--max-queue, 1000 by default), at most --fill-timeout seconds (40).
// Bounds: loopback only; each load phase lasts --seconds (at most --max-requests requests); a queue
// gets 60 s to drain; servers 20 s to start; every temp folder is removed.
import { spawn, type ChildProcess } from 'node:child_process'
import { Agent, request } from 'node:http'
import { mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'

const here = dirname(fileURLToPath(import.meta.url))
const { values: opt } = parseArgs({
  options: {
    bin: { type: 'string', default: join(here, '..', 'bin', 'run.js') },
    before: { type: 'string' },
    clients: { type: 'string', default: '32' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    'refusal-seconds': { type: 'string', default: '4' },
    'max-requests': { type: 'string', default: '300000' },
    'file-size': { type: 'string', default: '1024' },
    'node-args': { type: 'string', default: '' },
    'exec-argv': { type: 'string', default: '' },
    'no-none': { type: 'boolean', default: false },
    also: { type: 'string', multiple: true, default: [] },
    'fill-timeout': { type: 'string', default: '40' },
    json: { type: 'string' },
  },
})
const clients = Number(opt.clients)
const seconds = Number(opt.seconds)
const maxRequests = Number(opt['max-requests'])
const nodeArgs = opt['node-args']!.split(' ').filter(Boolean)
const execArgv = opt['exec-argv']!.split(' ').filter(Boolean)

const boundary = '----rrcloudvs' + Date.now()
const payload = Buffer.alloc(Number(opt['file-size']), 'echo bench line\n')
const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="service"\r\n\r\necho\r\n` +
  `--${boundary}\r\nContent-Disposition: form-data; name="fileIn0"; filename="in.txt"\r\n` +
  'Content-Type: text/plain\r\n\r\n')
const tail = Buffer.from(`\r\n--${boundary}--\r\n`)
const run = `${process.pid}-${Date.now()}`
let seq = 0
/** a form of the same size every time, its content different in every request: no task completes from the node's result cache */
function body (): Buffer {
  const b = Buffer.concat([head, payload, tail])
  b.write(`${run} ${++seq}\n`, head.length)
  return b
}

interface Server { proc: ChildProcess; port: number; log: string }

async function launch (args: string[], dir: string, ready: RegExp): Promise<Server> {
  const log = join(dir, 'server.log')
  const fd = openSync(log, 'w')
  const proc = spawn(process.execPath, args, { stdio: ['ignore', fd, fd], env: { ...process.env, RRCLOUD_MDNS: 'off' } })
  for (const until = Date.now() + 20_000; Date.now() < until; await sleep(50)) {
    const m = ready.exec(readFileSync(log, 'utf8'))
    if (m) return { proc, port: Number(m[1]), log }
    if (proc.exitCode !== null) break
  }
  proc.kill('SIGKILL')
  throw new Error(`server did not start: ${readFileSync(log, 'utf8').slice(-2000)}`)
}

async function stop (s: Server) {
  if (s.proc.exitCode !== null) return
  const exited = new Promise((resolve) => s.proc.once('exit', resolve))
  s.proc.kill('SIGTERM')
  const t = setTimeout(() => s.proc.kill('SIGKILL'), 15_000)
  await exited
  clearTimeout(t)
}

const stat = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ').map(Number)
/** utime+stime of a process, s; with `reaped`, also that of the children it waited for */
function cpu (pid: number, reaped = false): number {
  try {
    const f = stat(pid)
    return (f[11] + f[12] + (reaped ? f[13] + f[14] : 0)) / 100
  } catch { return NaN }
}
function childrenOf (pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number))
  } catch { return [] }
}
/** CPU of a process's live descendants (the spawn helper) with the children they waited for (the tools), s */
function descendantsCpu (pid: number): number {
  return childrenOf(pid).reduce((n, c) => n + (cpu(c, true) || 0) + descendantsCpu(c), 0)
}
const rssMiB = (pid: number, key = 'VmHWM') => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024

function call (agent: Agent, port: number, method: string, path: string, data?: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port, method, path, agent,
      headers: data
        ? { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': data.length, accept: 'application/json' }
        : { accept: 'application/json' },
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.setTimeout(60_000, () => req.destroy(new Error('no answer in 60 s')))
    req.on('error', reject)
    req.end(data)
  })
}

interface Load {
  ok: number; refused: number; errors: number; seconds: number; start: number; end: number; p50: number; p99: number
  firstError?: string
  /** the first 503's body: why the node was full */
  firstRefusal?: string
}

/** `clients` loops, each POSTing as soon as its previous POST was answered, for `sec` seconds */
async function load (port: number, sec: number): Promise<Load> {
  const agent = new Agent({ keepAlive: true, maxSockets: clients })
  const lat: number[] = []
  let ok = 0
  let refused = 0
  let errors = 0
  let sent = 0
  let firstError: string | undefined
  let firstRefusal: string | undefined
  const start = Date.now() / 1000
  const t0 = performance.now()
  const end = t0 + sec * 1000
  const loop = async () => {
    while (performance.now() < end && sent < maxRequests) {
      sent++
      const t = performance.now()
      try {
        const r = await call(agent, port, 'POST', '/', body())
        if (r.status >= 200 && r.status < 300) { ok++; lat.push(performance.now() - t) } else if (r.status === 503) { refused++; firstRefusal ??= r.text.slice(0, 300) }
        else { errors++; firstError ??= `${r.status} ${r.text.slice(0, 200)}` }
      } catch (e) {
        errors++
        firstError ??= (e as Error).message
      }
    }
  }
  await Promise.all(Array.from({ length: clients }, loop))
  const took = (performance.now() - t0) / 1000
  agent.destroy()
  lat.sort((a, b) => a - b)
  const q = (p: number) => Math.round((lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN) * 10) / 10
  return { ok, refused, errors, seconds: took, start, end: start + took, p50: q(0.5), p99: q(0.99), firstError, firstRefusal }
}

interface TaskRow { id: string; status: string; ctime: number; etime?: number }
async function get<T> (port: number, path: string): Promise<T> {
  const agent = new Agent({ keepAlive: false })
  try { return JSON.parse((await call(agent, port, 'GET', path)).text) as T } finally { agent.destroy() }
}
async function drained (port: number, ms: number): Promise<boolean> {
  for (const until = Date.now() + ms; Date.now() < until; await sleep(100)) {
    const m = await get<{ queue: number; running: number }>(port, '/api/v1/meta')
    if (m.queue === 0 && m.running === 0) return true
  }
  return false
}

interface Result {
  completedPerSec: number
  acceptedPerSec: number
  refusedPerSec: number
  errors: number
  failed: number
  /** ms of the server's own CPU per request answered (accepted or refused) */
  cpuPerRequestMs: number
  /** ms of CPU of the spawned processes (node: the spawn helper and the tools; baseline: the cats) per completed run */
  childCpuPerRunMs: number
  /** ms of all of it per completed run */
  totalCpuPerRunMs: number
  p50: number
  p99: number
  peakRssMiB: number
  /** node: tasks/s while the queue drains after the load */
  drainPerSec?: number
  firstError?: string
}

async function runBaseline (): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'rrcloud-bench-vs-'))
  const s = await launch([join(here, 'baselines', 'koa-spawn.mjs'), join(dir, 'files')], dir, /listening (\d+)/)
  try {
    await load(s.port, Number(opt.warmup))
    const pid = s.proc.pid!
    const own0 = cpu(pid)
    const all0 = cpu(pid, true)
    const r = await load(s.port, seconds)
    const own = cpu(pid) - own0
    const all = cpu(pid, true) - all0
    return {
      completedPerSec: r.ok / r.seconds, acceptedPerSec: r.ok / r.seconds, refusedPerSec: r.refused / r.seconds, errors: r.errors, failed: 0,
      cpuPerRequestMs: own / (r.ok + r.refused) * 1000, childCpuPerRunMs: (all - own) / r.ok * 1000, totalCpuPerRunMs: all / r.ok * 1000,
      p50: r.p50, p99: r.p99, peakRssMiB: rssMiB(pid), firstError: r.firstError,
    }
  } finally {
    await stop(s)
    rmSync(dir, { recursive: true, force: true })
  }
}

async function startNode (bin: string, extra: string[], dir: string): Promise<Server> {
  return launch([...execArgv, bin, 'node', '--port', '0', '--host', '127.0.0.1', '--no-mdns', '--name', 'bench',
    '--data-dir', join(dir, 'data'), ...nodeArgs, ...extra], dir, /listening on http:\/\/127\.0\.0\.1:(\d+)/)
}

/** the node's --max-queue with these flags */
const maxQueue = (extra: string[]) => {
  const args = [...nodeArgs, ...extra]
  const i = args.lastIndexOf('--max-queue')
  return i >= 0 ? Number(args[i + 1]) : 1000
}

async function runNode (bin: string, extra: string[]): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'rrcloud-bench-vs-'))
  const s = await startNode(bin, extra, dir)
  try {
    const pid = s.proc.pid!
    // the warm-up fills the queue: the window sees the node as a sustained load leaves it
    await load(s.port, Number(opt.warmup))
    for (const until = Date.now() + Number(opt['fill-timeout']) * 1000; Date.now() < until;) {
      const m = await get<{ queue: number }>(s.port, '/api/v1/meta')
      if (m.queue >= maxQueue(extra) - clients) break
      await load(s.port, 1)
    }
    const own0 = cpu(pid)
    const kids0 = descendantsCpu(pid)
    const r = await load(s.port, seconds)
    const own = cpu(pid) - own0
    const kids = descendantsCpu(pid) - kids0
    const stopped = Date.now() / 1000
    const ok = await drained(s.port, 60_000)
    const tasks = await get<TaskRow[]>(s.port, '/api/v1/tasks')
    const done = tasks.filter((t) => t.status === 'complete' && t.etime !== undefined)
    const inWindow = done.filter((t) => t.etime! >= r.start && t.etime! <= r.end).length
    const after = done.filter((t) => t.etime! > stopped)
    const lastEnd = Math.max(stopped, ...after.map((t) => t.etime!))
    return {
      completedPerSec: inWindow / r.seconds, acceptedPerSec: r.ok / r.seconds, refusedPerSec: r.refused / r.seconds, errors: r.errors,
      failed: tasks.filter((t) => t.status === 'failed').length,
      cpuPerRequestMs: own / (r.ok + r.refused) * 1000, childCpuPerRunMs: kids / inWindow * 1000, totalCpuPerRunMs: (own + kids) / inWindow * 1000,
      p50: r.p50, p99: r.p99, peakRssMiB: rssMiB(pid),
      drainPerSec: ok && after.length > 50 ? after.length / (lastEnd - stopped) : NaN,
      firstError: r.firstError,
    }
  } finally {
    await stop(s)
    rmSync(dir, { recursive: true, force: true })
  }
}

/** A node that refuses every task (--max-queue 0): its CPU per refused request. */
async function runRefusals (bin: string): Promise<{ refusedPerSec: number; cpuPerRefusedMs: number; other: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'rrcloud-bench-vs-'))
  const s = await startNode(bin, ['--max-queue', '0', '--queue-wait', '0'], dir)
  try {
    const pid = s.proc.pid!
    await load(s.port, 1)
    const own0 = cpu(pid)
    const r = await load(s.port, Number(opt['refusal-seconds']))
    return { refusedPerSec: r.refused / r.seconds, cpuPerRefusedMs: (cpu(pid) - own0) / r.refused * 1000, other: r.ok + r.errors }
  } finally {
    await stop(s)
    rmSync(dir, { recursive: true, force: true })
  }
}

type Contender = { name: string; run: () => Promise<Result> }
const contenders: Contender[] = [
  { name: 'baseline', run: runBaseline },
  { name: 'node', run: () => runNode(opt.bin!, []) },
  ...(opt['no-none'] ? [] : [{ name: 'node --sandbox none', run: () => runNode(opt.bin!, ['--sandbox', 'none']) }]),
  ...(opt.before ? [{ name: 'before', run: () => runNode(opt.before!, []) }] : []),
  ...opt.also!.map((flags) => ({ name: `node ${flags}`, run: () => runNode(opt.bin!, flags.split(' ').filter(Boolean)) })),
]

const median = (xs: number[]) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
const f1 = (x: number) => Number.isFinite(x) ? x.toFixed(x >= 100 ? 0 : x >= 10 ? 1 : 2) : '-'

const loadBefore = loadavg()
const rounds: Array<Record<string, Result> & { refusals?: Awaited<ReturnType<typeof runRefusals>> }> = []
for (let n = 0; n < Number(opt.rounds); n++) {
  const round: (typeof rounds)[number] = {}
  // interleaved: each round starts with the next contender
  for (let k = 0; k < contenders.length; k++) {
    const c = contenders[(n + k) % contenders.length]
    round[c.name] = await c.run()
    const x = round[c.name]
    console.error(`round ${n + 1} ${c.name}: ${f1(x.completedPerSec)} completed/s, ${f1(x.acceptedPerSec)} accepted/s, ${f1(x.refusedPerSec)} refused/s, ` +
      `CPU ${f1(x.cpuPerRequestMs)} ms/request + ${f1(x.childCpuPerRunMs)} ms/run in children${x.drainPerSec ? `, drains ${f1(x.drainPerSec)}/s` : ''}` +
      `${x.errors ? `, ${x.errors} errors (${x.firstError})` : ''}${x.failed ? `, ${x.failed} failed` : ''}`)
  }
  round.refusals = await runRefusals(opt.bin!)
  console.error(`round ${n + 1} refusals (--max-queue 0): ${f1(round.refusals.refusedPerSec)} refused/s, ${f1(round.refusals.cpuPerRefusedMs)} ms CPU each`)
  rounds.push(round)
}

const names = contenders.map((c) => c.name)
const med = (name: string, k: keyof Result) => median(rounds.map((r) => r[name][k] as number))
const ratio = (name: string) => median(rounds.map((r) => r[name].completedPerSec / r.baseline.completedPerSec))
const summary = {
  node: process.version, cores: availableParallelism(), clients, seconds, rounds: rounds.length, fileBytes: payload.length,
  nodeArgs, loadavgBefore: loadBefore, loadavgAfter: loadavg(),
  median: Object.fromEntries(names.map((n) => [n, Object.fromEntries((['completedPerSec', 'acceptedPerSec', 'refusedPerSec', 'cpuPerRequestMs', 'childCpuPerRunMs', 'totalCpuPerRunMs', 'p50', 'p99', 'peakRssMiB', 'drainPerSec'] as const).map((k) => [k, med(n, k)]))])),
  ratioToBaseline: Object.fromEntries(names.filter((n) => n !== 'baseline').map((n) => [n, ratio(n)])),
  ratioRange: Object.fromEntries(names.filter((n) => n !== 'baseline').map((n) => {
    const xs = rounds.map((r) => r[n].completedPerSec / r.baseline.completedPerSec)
    return [n, [Math.min(...xs), Math.max(...xs)]]
  })),
  refusal: { refusedPerSec: median(rounds.map((r) => r.refusals!.refusedPerSec)), cpuPerRefusedMs: median(rounds.map((r) => r.refusals!.cpuPerRefusedMs)) },
  perRound: rounds,
}
if (opt.json) writeFileSync(opt.json, JSON.stringify(summary, null, 2) + '\n')

const rows: Array<[string, (n: string) => string]> = [
  ['completed runs/s (median)', (n) => f1(med(n, 'completedPerSec'))],
  ['ratio to baseline (median; min–max of rounds)', (n) => n === 'baseline' ? '1' : `${summary.ratioToBaseline[n].toFixed(2)} (${summary.ratioRange[n].map((x) => x.toFixed(2)).join('–')})`],
  ['accepted/s', (n) => f1(med(n, 'acceptedPerSec'))],
  ['refused (503)/s', (n) => f1(med(n, 'refusedPerSec'))],
  ['server CPU per request answered, ms', (n) => f1(med(n, 'cpuPerRequestMs'))],
  ['helper + tools CPU per completed run, ms', (n) => f1(med(n, 'childCpuPerRunMs'))],
  ['all CPU per completed run, ms', (n) => f1(med(n, 'totalCpuPerRunMs'))],
  ['latency of accepted requests p50 / p99, ms', (n) => `${f1(med(n, 'p50'))} / ${f1(med(n, 'p99'))}`],
  ['queue drained after the load at, tasks/s', (n) => f1(med(n, 'drainPerSec'))],
  ['peak RSS of the server process, MiB', (n) => f1(med(n, 'peakRssMiB'))],
]
console.log(`\n${clients} clients, ${payload.length}-byte echo upload, ${seconds} s per contender per round after ${opt.warmup} s warm-up, ${rounds.length} rounds; ` +
  `Node ${process.version}, ${availableParallelism()} cores; load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')} → ${loadavg().map((x) => x.toFixed(2)).join(' ')}\n`)
console.log(`| | ${names.join(' | ')} |\n|---|${names.map(() => '---:').join('|')}|`)
for (const [label, cell] of rows) console.log(`| ${label} | ${names.map(cell).join(' | ')} |`)
console.log(`\nCPU per refused request (a node with --max-queue 0 under the same load): ${f1(summary.refusal.cpuPerRefusedMs)} ms, ${f1(summary.refusal.refusedPerSec)} refused/s`)
console.log('per round, completed/s: ' + rounds.map((r, i) => `${i + 1}: ` + names.map((n) => `${n} ${f1(r[n].completedPerSec)}`).join(', ')).join('; '))
const errors = rounds.reduce((n, r) => n + names.reduce((m, k) => m + r[k].errors, 0), 0)
if (errors) { console.error(`${errors} requests failed other than by 503`); process.exitCode = 1 }
