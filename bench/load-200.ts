// 200 clients at once against one node with its default flags: each submits a small echo task
// (its own content), waits for it with the long poll, fetches the result and checks it is the
// bytes it sent, then submits the next, for a bounded time and count. Reports accepted, refused
// (by status), completed, submit → complete latency, the node's peak RSS, and every mismatch.
// The node runs as a process of its own on 127.0.0.1 (`rrcloud node --no-mdns`); build first.
//
//   npm run build && node --import tsx bench/load-200.ts [--clients 200] [--seconds 20]
//     [--max-tasks 20000] [--drain-timeout 120] [--bin bin/run.js] [--json FILE]
import { spawn } from 'node:child_process'
import { Agent, request } from 'node:http'
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const { values: opt } = parseArgs({
  options: {
    clients: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '20' },
    'max-tasks': { type: 'string', default: '20000' },
    'drain-timeout': { type: 'string', default: '120' },
    bin: { type: 'string', default: join(root, 'bin', 'run.js') },
    json: { type: 'string' },
    /** extra flags for the node, e.g. --node-args='--sandbox none' to see what the sandbox costs */
    'node-args': { type: 'string', default: '' },
  },
})
const clients = Number(opt.clients)
const seconds = Number(opt.seconds)
const maxTasks = Number(opt['max-tasks'])
const drainMs = Number(opt['drain-timeout']) * 1000

const dir = mkdtempSync(join(tmpdir(), 'rrcloud-bench-load-'))
const logPath = join(dir, 'node.log')
const proc = spawn(process.execPath, [opt.bin!, 'node', '--port', '0', '--host', '127.0.0.1', '--no-mdns', '--data-dir', join(dir, 'data'), ...opt['node-args']!.split(' ').filter(Boolean)],
  { stdio: ['ignore', openSync(logPath, 'w'), openSync(logPath, 'a')], env: { ...process.env, RRCLOUD_MDNS: 'off' } })
let port = 0
for (const until = Date.now() + 20_000; Date.now() < until && !port; await sleep(50)) {
  port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(readFileSync(logPath, 'utf8'))?.[1] ?? 0)
  if (proc.exitCode !== null) break
}
if (!port) { proc.kill('SIGKILL'); throw new Error(`the node did not start: ${readFileSync(logPath, 'utf8').slice(-2000)}`) }

const peakRssMiB = () => Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024

const agent = new Agent({ keepAlive: true, maxSockets: clients * 2 })
interface Reply { status: number; body: Buffer }
function call (method: string, path: string, body?: Buffer, type?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port, method, path, agent,
      headers: { accept: 'application/json', ...(body ? { 'content-type': type, 'content-length': body.length } : {}) },
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.setTimeout(90_000, () => req.destroy(new Error('no answer in 90 s')))
    req.on('error', reject)
    req.end(body)
  })
}

const boundary = '----rrcloudload200'
const form = (content: Buffer) => Buffer.concat([
  Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="service"\r\n\r\necho\r\n` +
    `--${boundary}\r\nContent-Disposition: form-data; name="fileIn0"; filename="in.txt"\r\nContent-Type: text/plain\r\n\r\n`),
  content,
  Buffer.from(`\r\n--${boundary}--\r\n`),
])

let submitted = 0
let accepted = 0
let completed = 0
let failed = 0
let verified = 0
const mismatches: string[] = []
const refused: Record<string, number> = {}
const errors: Record<string, number> = {}
const latencies: number[] = []
const count = (m: Record<string, number>, k: string) => { m[k] = (m[k] ?? 0) + 1 }

const start = performance.now()
const stopSubmitting = start + seconds * 1000
const hardStop = stopSubmitting + drainMs

async function client (n: number) {
  for (let seq = 0; performance.now() < stopSubmitting && submitted < maxTasks; seq++) {
    submitted++
    const content = Buffer.from(`client ${n} task ${seq} ${Math.random().toString(36).slice(2)}\n`.repeat(1 + (seq % 8)))
    const t0 = performance.now()
    try {
      const r = await call('POST', '/api/v1/tasks', form(content), `multipart/form-data; boundary=${boundary}`)
      if (r.status !== 201) { count(refused, String(r.status)); await sleep(50); continue }
      accepted++
      const id = JSON.parse(r.body.toString()).id as string
      let task: { status: string; error?: string } = { status: 'queued' }
      while (!['complete', 'failed', 'cancelled'].includes(task.status) && performance.now() < hardStop) {
        task = JSON.parse((await call('GET', `/api/v1/tasks/${id}?wait=30`)).body.toString())
      }
      if (task.status !== 'complete') { failed++; mismatches.push(`${id}: ${task.status} ${task.error ?? ''}`); continue }
      completed++
      latencies.push(performance.now() - t0)
      const out = await call('GET', `/api/v1/tasks/${id}/output`)
      if (out.status === 200 && out.body.equals(content)) verified++
      else mismatches.push(`${id}: output ${out.status}, ${out.body.length} bytes, expected ${content.length}`)
    } catch (e) {
      count(errors, (e as NodeJS.ErrnoException).code ?? (e as Error).message)
    }
  }
}

try {
  await Promise.all(Array.from({ length: clients }, (_, n) => client(n)))
  const took = (performance.now() - start) / 1000
  latencies.sort((a, b) => a - b)
  const q = (p: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN)
  const result = {
    clients, seconds, maxTasks, cores: availableParallelism(), node: process.version, loadavgAfter: loadavg().map((x) => Math.round(x * 100) / 100),
    submitted, accepted, refused, errors, completed, failed, verified, mismatches: mismatches.slice(0, 20),
    tookSeconds: Math.round(took * 10) / 10, completedPerSecond: Math.round(completed / took),
    latencyMs: { p50: q(0.5), p99: q(0.99), max: Math.round(latencies[latencies.length - 1] ?? NaN) },
    nodePeakRssMiB: Math.round(peakRssMiB() * 10) / 10,
  }
  console.log(JSON.stringify(result, null, 2))
  if (opt.json) writeFileSync(opt.json, JSON.stringify(result, null, 2) + '\n')
  if (mismatches.length || failed || Object.keys(errors).length) process.exitCode = 1
} finally {
  agent.destroy()
  const exited = new Promise((resolve) => proc.once('exit', resolve))
  proc.kill('SIGTERM')
  const kill = setTimeout(() => proc.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(kill)
  rmSync(dir, { recursive: true, force: true })
}
