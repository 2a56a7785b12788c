// Task rate: echo tasks per second through a node, N keep-alive clients each POSTing a small
// multipart upload in a loop, against a bare koa + @koa/multer upload handler (the baseline).
// Servers run as processes of their own; this process is only the load generator.
//
//   node --import tsx bench/node-rate.ts --bin PATH/bin/run.js [--clients 32] [--seconds 10]
//     [--warmup 2] [--rounds 3] [--max-requests 200000] [--drain-timeout 180] [--json FILE]
//     [--only node|baseline] [--exec-argv='--cpu-prof --cpu-prof-dir=DIR'] [--no-drain]
//   --no-drain measures acceptance only (for a node built to queue without running); temp dirs go
//   under $TMPDIR.
import { spawn, type ChildProcess } from 'node:child_process'
import { Agent, request } from 'node:http'
import { mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'

const here = dirname(fileURLToPath(import.meta.url))
const { values: opt } = parseArgs({
  options: {
    bin: { type: 'string' },
    clients: { type: 'string', default: '32' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
    'max-requests': { type: 'string', default: '200000' },
    'drain-timeout': { type: 'string', default: '180' },
    'file-size': { type: 'string', default: '1024' },
    json: { type: 'string' },
    only: { type: 'string' },
    'exec-argv': { type: 'string', default: '' },
    'no-drain': { type: 'boolean', default: false },
  },
})
if (!opt.bin) throw new Error('--bin PATH/bin/run.js is required (bench/lib/build-product.sh makes one)')
const clients = Number(opt.clients)
const seconds = Number(opt.seconds)
const maxRequests = Number(opt['max-requests'])
const drainTimeoutMs = Number(opt['drain-timeout']) * 1000

// one multipart body, built once; each request writes a number of its own into a copy, so that no
// task completes from the node's result cache (the same input would, once its first task is done)
const boundary = '----rrcloudbench' + Date.now()
const payload = Buffer.alloc(Number(opt['file-size']), 'echo bench line\n')
const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="service"\r\n\r\necho\r\n` +
  `--${boundary}\r\nContent-Disposition: form-data; name="fileIn0"; filename="in.txt"\r\n` +
  'Content-Type: text/plain\r\n\r\n')
const template = Buffer.concat([head, payload, Buffer.from(`\r\n--${boundary}--\r\n`)])
let seq = 0
const body = () => {
  const b = Buffer.from(template)
  b.write(`${process.pid}-${Date.now()} ${++seq}\n`, head.length)
  return b
}

interface Server { name: string; proc: ChildProcess; port: number; dir: string }

async function launch (name: string, exe: string, args: string[], dir: string, ready: RegExp): Promise<Server> {
  const logPath = join(dir, `${name}.log`)
  const fd = openSync(logPath, 'w')
  const proc = spawn(exe, args, { stdio: ['ignore', fd, fd] })
  const until = Date.now() + 20_000
  while (Date.now() < until) {
    const m = ready.exec(readFileSync(logPath, 'utf8'))
    if (m) return { name, proc, port: Number(m[1]), dir }
    if (proc.exitCode !== null) break
    await sleep(50)
  }
  proc.kill('SIGKILL')
  throw new Error(`${name} did not start: ${readFileSync(logPath, 'utf8').slice(-2000)}`)
}

async function stop (s: Server) {
  if (s.proc.exitCode !== null) return
  const exited = new Promise((resolve) => s.proc.once('exit', resolve))
  s.proc.kill('SIGTERM')
  const t = setTimeout(() => s.proc.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(t)
}

/** utime+stime of a process, seconds (children it waited for are not included) */
function cpuSeconds (pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(f[11]) + Number(f[12])) / 100
}

/** pids of a process's children */
function childrenOf (pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number))
  } catch { return [] }
}

/** CPU seconds of a process's live descendants (the spawn helper), with the children they waited for (the tools) */
function descendantsCpuSeconds (pid: number): number {
  let sum = 0
  for (const c of childrenOf(pid)) {
    try {
      const f = readFileSync(`/proc/${c}/stat`, 'utf8').split(') ')[1].split(' ')
      sum += (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100 + descendantsCpuSeconds(c)
    } catch {}
  }
  return sum
}

/** peak resident set size of a process, MiB */
function peakRssMiB (pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Math.round(Number(m[1]) / 102.4) / 10 : NaN
}

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
    req.on('error', reject)
    req.end(data)
  })
}

interface Load { ok: number; errors: number; seconds: number; rps: number; p50: number; p99: number; lastReply?: string; firstError?: string }

/** `clients` loops, each POSTing as soon as its previous POST returned, for `sec` seconds */
async function load (port: number, path: string, sec: number): Promise<Load> {
  const agent = new Agent({ keepAlive: true, maxSockets: clients })
  const lat: number[] = []
  let ok = 0
  let errors = 0
  let sent = 0
  let lastReply: string | undefined
  let firstError: string | undefined
  const start = performance.now()
  const end = start + sec * 1000
  const loop = async () => {
    while (performance.now() < end && sent < maxRequests) {
      sent++
      const t0 = performance.now()
      try {
        const r = await call(agent, port, 'POST', path, body())
        if (r.status >= 200 && r.status < 300) { ok++; lastReply = r.text } else { errors++; firstError ??= `${r.status} ${r.text.slice(0, 200)}` }
      } catch (e) {
        errors++
        firstError ??= (e as Error).message
      }
      lat.push(performance.now() - t0)
    }
  }
  await Promise.all(Array.from({ length: clients }, loop))
  const took = (performance.now() - start) / 1000
  agent.destroy()
  lat.sort((a, b) => a - b)
  const q = (p: number) => Math.round((lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? 0) * 100) / 100
  return { ok, errors, seconds: took, rps: ok / took, p50: q(0.5), p99: q(0.99), lastReply, firstError }
}

interface TaskRow { id: string; status: string; ctime: number; etime?: number }

/** waits until the node has nothing queued or running; polls one task, then meta, to stay cheap */
async function drain (port: number, lastId: string | undefined): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  const until = Date.now() + drainTimeoutMs
  try {
    while (lastId && Date.now() < until) {
      const t = JSON.parse((await call(agent, port, 'GET', `/api/v1/tasks/${lastId}`)).text) as TaskRow
      if (!['queued', 'busy', 'paused'].includes(t.status)) break
      await sleep(100)
    }
    while (Date.now() < until) {
      const m = JSON.parse((await call(agent, port, 'GET', '/api/v1/meta')).text) as { queue: number; running: number }
      if (m.queue === 0 && m.running === 0) return
      await sleep(200)
    }
    throw new Error(`the node's queue did not drain within ${drainTimeoutMs / 1000} s`)
  } finally {
    agent.destroy()
  }
}

async function tasksOf (port: number): Promise<TaskRow[]> {
  const agent = new Agent({ keepAlive: false })
  try {
    return JSON.parse((await call(agent, port, 'GET', '/api/v1/tasks')).text) as TaskRow[]
  } finally {
    agent.destroy()
  }
}

type BaseResult = Load & { cpuPer1k: number; peakRssMiB: number }
type NodeResult = BaseResult & {
  completed: number; failed: number; completeRate: number; drainSeconds: number
  /** CPU of the spawn helper and the tools, ms per accepted task, from the start of the load until the queue drained */
  helperCpuPer1k: number
}

async function runBaseline (dir: string): Promise<BaseResult> {
  const execArgv = opt['exec-argv']!.split(' ').filter(Boolean)
  const base = await launch('baseline', process.execPath, [...execArgv, join(here, 'baselines', 'koa-upload.mjs'), join(dir, 'uploads')], dir, /listening (\d+)/)
  try {
    await load(base.port, '/', Number(opt.warmup))
    const cpu0 = cpuSeconds(base.proc.pid!)
    const r = await load(base.port, '/', seconds)
    return { ...r, cpuPer1k: (cpuSeconds(base.proc.pid!) - cpu0) / r.ok * 1000, peakRssMiB: peakRssMiB(base.proc.pid!) }
  } finally {
    await stop(base)
  }
}

async function runNode (dir: string): Promise<NodeResult> {
  const execArgv = opt['exec-argv']!.split(' ').filter(Boolean)
  const node = await launch('node', process.execPath, [...execArgv, opt.bin!, 'node', '--port', '0', '--host', '127.0.0.1',
    '--data-dir', join(dir, 'data'), '--slots', '2', '--name', 'bench', '--no-mdns',
    // nothing is refused for a full queue: the load measures acceptance; completion is measured apart
    '--max-queue', String(maxRequests)], dir, /listening on http:\/\/127\.0\.0\.1:(\d+)/)
  try {
    // warm up, then let the warm-up tasks finish so they do not run during the measurement
    const w = await load(node.port, '/', Number(opt.warmup))
    if (!opt['no-drain']) await drain(node.port, w.lastReply && JSON.parse(w.lastReply).id)
    const before = new Set((await tasksOf(node.port)).map((t) => t.id))
    const cpu0 = cpuSeconds(node.proc.pid!)
    const helper0 = descendantsCpuSeconds(node.proc.pid!)
    const startSec = Date.now() / 1000
    const r = await load(node.port, '/', seconds)
    const cpuLoad = cpuSeconds(node.proc.pid!) - cpu0
    if (opt['no-drain']) return { ...r, cpuPer1k: cpuLoad / r.ok * 1000, peakRssMiB: peakRssMiB(node.proc.pid!), completed: NaN, failed: 0, completeRate: NaN, drainSeconds: NaN, helperCpuPer1k: NaN }
    await drain(node.port, r.lastReply && JSON.parse(r.lastReply).id)
    const helperCpu = descendantsCpuSeconds(node.proc.pid!) - helper0
    const mine = (await tasksOf(node.port)).filter((t) => !before.has(t.id))
    if (mine.length !== r.ok) throw new Error(`node accepted ${r.ok} tasks but lists ${mine.length}`)
    const done = mine.filter((t) => t.status === 'complete')
    const lastEnd = Math.max(...mine.map((t) => t.etime ?? 0))
    return {
      ...r,
      cpuPer1k: cpuLoad / r.ok * 1000,
      peakRssMiB: peakRssMiB(node.proc.pid!),
      completed: done.length,
      failed: mine.length - done.length,
      completeRate: done.length / (lastEnd - startSec),
      drainSeconds: Math.max(0, lastEnd - startSec - r.seconds),
      helperCpuPer1k: helperCpu / r.ok * 1000,
    }
  } finally {
    await stop(node)
  }
}

interface Round { baseline?: BaseResult; node?: NodeResult }

async function round (n: number): Promise<Round> {
  const dir = mkdtempSync(join(tmpdir(), 'rrcloud-bench-rate-'))
  try {
    const baseline = opt.only === 'node' ? undefined : await runBaseline(dir)
    const node = opt.only === 'baseline' ? undefined : await runNode(dir)
    console.error(`round ${n}: baseline ${baseline?.rps.toFixed(0) ?? '-'} req/s; ` +
      `node ${node?.rps.toFixed(0) ?? '-'} req/s accepted, ${node?.completeRate.toFixed(0) ?? '-'} tasks/s completed`)
    return { baseline, node }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
const loadBefore = loadavg()
const rounds: Round[] = []
for (let i = 1; i <= Number(opt.rounds); i++) rounds.push(await round(i))
const strip = (l?: Load) => { if (!l) return undefined; const { lastReply: _l, ...rest } = l; return rest }
const both = rounds.filter((r) => r.baseline && r.node)
const summary = {
  clients, seconds, warmup: Number(opt.warmup), rounds: rounds.length, fileBytes: payload.length,
  tmpdir: tmpdir(), loadavgBefore: loadBefore, loadavgAfter: loadavg(),
  baselineRps: median(rounds.flatMap((r) => r.baseline ? [r.baseline.rps] : [])),
  nodeRps: median(rounds.flatMap((r) => r.node ? [r.node.rps] : [])),
  nodeCompleteRate: median(rounds.flatMap((r) => r.node ? [r.node.completeRate] : [])),
  // rounds pair a baseline and a node run made close in time: their ratio is what other load on
  // the machine disturbs least; the best of each side is the least disturbed run
  ratio: median(both.map((r) => r.node!.rps / r.baseline!.rps)),
  completeRatio: median(both.map((r) => r.node!.completeRate / r.baseline!.rps)),
  bestBaselineRps: Math.max(...rounds.map((r) => r.baseline?.rps ?? NaN)),
  bestNodeRps: Math.max(...rounds.map((r) => r.node?.rps ?? NaN)),
  perRound: rounds.map((r) => ({ baseline: strip(r.baseline), node: strip(r.node) })),
}
const errors = rounds.reduce((n, r) => n + (r.baseline?.errors ?? 0) + (r.node?.errors ?? 0) + (r.node?.failed ?? 0), 0)
if (opt.json) writeFileSync(opt.json, JSON.stringify(summary, null, 2) + '\n')
console.log(JSON.stringify({ baselineRps: summary.baselineRps, nodeRps: summary.nodeRps, nodeCompleteRate: summary.nodeCompleteRate, ratio: summary.ratio, errors }))
if (errors) process.exitCode = 1
