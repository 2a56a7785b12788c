// A node on a small machine: memory (RSS of the node and of its spawn helper) and CPU, idle for a
// minute, then after a run of echo tasks, idle again. The node is the built CLI with its default
// flags (`bin/run.js node`), a process of its own, with a temp data folder:
//   1. on the host with --no-mdns: RSS and CPU over --idle-seconds;
//   2. the same node runs --tasks echo tasks (8 clients, 1 KiB each, each different), then RSS of
//      the node and of its spawn helper (it starts with the first task), and CPU over the next
//      --idle-seconds (and the node's own CPU seconds while the tasks ran);
//   3. with mDNS on, inside a network namespace of its own (test/helpers/netns.ts, deleted after;
//      needs root): CPU and RSS over --idle-seconds, so that its multicast never leaves the machine.
// RSS is VmRSS from /proc/PID/status (it counts the pages of the node binary that both processes
// map, once in each); PSS (smaps_rollup) splits shared pages between the processes that map them.
//
//   npm run build && node --import tsx bench/memory.ts [--idle-seconds 60] [--tasks 2000]
//     [--bin bin/run.js] [--node-args='...'] [--exec-argv='...'] [--no-netns] [--json FILE]
import { spawn, type ChildProcess } from 'node:child_process'
import { Agent, request } from 'node:http'
import { mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { canUseNetns, createLan } from '../test/helpers/netns.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const { values: opt } = parseArgs({
  options: {
    bin: { type: 'string', default: join(root, 'bin', 'run.js') },
    'idle-seconds': { type: 'string', default: '60' },
    tasks: { type: 'string', default: '2000' },
    'node-args': { type: 'string', default: '' },
    /** node's own options for the node process, e.g. --exec-argv='--max-semi-space-size=2' */
    'exec-argv': { type: 'string', default: '' },
    'no-netns': { type: 'boolean', default: false },
    json: { type: 'string' },
  },
})
const idleSeconds = Number(opt['idle-seconds'])
const nodeArgs = opt['node-args']!.split(' ').filter(Boolean)
const MiB = (kb: number) => Math.round(kb / 102.4) / 10

const status = (pid: number, key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN)
const pss = (pid: number) => Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? NaN)
const ticks = (pid: number) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ').map(Number); return f[11] + f[12] }
function childrenOf (pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) => readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number))
  } catch { return [] }
}

interface Sample { nodeRss: number; helperRss: number; nodePss: number; helperPss: number; helpers: number }
function sample (pid: number): Sample {
  const helpers = childrenOf(pid)
  const sum = (f: (p: number) => number) => helpers.reduce((n, p) => { try { return n + f(p) } catch { return n } }, 0)
  return { nodeRss: status(pid, 'VmRSS'), helperRss: sum((p) => status(p, 'VmRSS')), nodePss: pss(pid), helperPss: sum(pss), helpers: helpers.length }
}

/** RSS (median of samples once a second) and CPU of the node and its children over `sec` seconds */
async function idle (pid: number, sec: number) {
  const all = () => ticks(pid) + childrenOf(pid).reduce((n, c) => { try { return n + ticks(c) } catch { return n } }, 0)
  const t0 = all()
  const w0 = performance.now()
  const samples: Sample[] = []
  while (performance.now() - w0 < sec * 1000) {
    await sleep(1000)
    samples.push(sample(pid))
  }
  const wall = (performance.now() - w0) / 1000
  const med = (k: keyof Sample) => { const s = samples.map((x) => x[k]).sort((a, b) => a - b); return s[s.length >> 1] }
  const max = (k: keyof Sample) => Math.max(...samples.map((x) => x[k]))
  return {
    seconds: Math.round(wall),
    cpuPercent: Math.round((all() - t0) / 100 / wall * 100 * 100) / 100,
    nodeRssMiB: MiB(med('nodeRss')), helperRssMiB: MiB(med('helperRss')), totalRssMiB: MiB(med('nodeRss') + med('helperRss')),
    maxTotalRssMiB: MiB(max('nodeRss') + max('helperRss')),
    nodePssMiB: MiB(med('nodePss')), helperPssMiB: MiB(med('helperPss')), totalPssMiB: MiB(med('nodePss') + med('helperPss')),
    helpers: med('helpers'),
    nodePeakRssMiB: MiB(status(pid, 'VmHWM')),
  }
}

async function waitListening (log: string, proc: ChildProcess): Promise<number> {
  for (const until = Date.now() + 30_000; Date.now() < until; await sleep(50)) {
    const m = /listening on http:\/\/[^:]+:(\d+)/.exec(readFileSync(log, 'utf8'))
    if (m) return Number(m[1])
    if (proc.exitCode !== null) break
  }
  proc.kill('SIGKILL')
  throw new Error(`the node did not start: ${readFileSync(log, 'utf8').slice(-2000)}`)
}

async function stop (proc: ChildProcess) {
  if (proc.exitCode !== null || proc.signalCode !== null) return
  const exited = new Promise((resolve) => proc.once('exit', resolve))
  proc.kill('SIGTERM')
  const t = setTimeout(() => proc.kill('SIGKILL'), 15_000)
  await exited
  clearTimeout(t)
}

/** `n` echo tasks over `clients` keep-alive connections, each waited for with the long poll */
async function tasks (port: number, n: number, clients = 8): Promise<{ complete: number; seconds: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: clients * 2 })
  const call = (method: string, path: string, body?: Buffer, type?: string) => new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent, headers: { accept: 'application/json', ...(body ? { 'content-type': type, 'content-length': body.length } : {}) } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }))
    })
    req.setTimeout(60_000, () => req.destroy(new Error('no answer in 60 s')))
    req.on('error', reject)
    req.end(body)
  })
  const boundary = '----rrcloudmemory'
  let next = 0
  let complete = 0
  const t0 = performance.now()
  await Promise.all(Array.from({ length: clients }, async () => {
    while (next < n) {
      const i = next++
      const content = Buffer.alloc(1024, `task ${i} of a memory bench\n`)
      const form = Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="service"\r\n\r\necho\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="fileIn0"; filename="in.txt"\r\nContent-Type: text/plain\r\n\r\n`), content, Buffer.from(`\r\n--${boundary}--\r\n`)])
      const r = await call('POST', '/api/v1/tasks', form, `multipart/form-data; boundary=${boundary}`)
      if (r.status !== 201) throw new Error(`task ${i}: ${r.status} ${r.text}`)
      const id = JSON.parse(r.text).id as string
      for (let t = { status: 'queued' }; !['complete', 'failed', 'cancelled'].includes(t.status);) t = JSON.parse((await call('GET', `/api/v1/tasks/${id}?wait=30`)).text)
      complete++
    }
  }))
  agent.destroy()
  return { complete, seconds: Math.round((performance.now() - t0) / 100) / 10 }
}

const execArgv = opt['exec-argv']!.split(' ').filter(Boolean)
const argv = (dataDir: string, mdns: boolean) => [...execArgv, opt.bin!, 'node', '--port', mdns ? '4468' : '0', ...(mdns ? [] : ['--host', '127.0.0.1', '--no-mdns']), '--data-dir', dataDir, ...nodeArgs]

const result: Record<string, unknown> = { node: process.version, loadavgBefore: loadavg().map((x) => Math.round(x * 100) / 100), idleSeconds, nodeArgs, execArgv }
const dir = mkdtempSync(join(tmpdir(), 'rrcloud-bench-memory-'))
try {
  // 1 and 2: on the host, no mDNS
  const log = join(dir, 'host.log')
  const proc = spawn(process.execPath, argv(join(dir, 'host'), false), { stdio: ['ignore', openSync(log, 'w'), openSync(log, 'a')], env: { ...process.env, RRCLOUD_MDNS: 'off' } })
  try {
    const port = await waitListening(log, proc)
    console.error(`idle node (--no-mdns), ${idleSeconds} s`)
    result.idle = await idle(proc.pid!, idleSeconds)
    console.error(JSON.stringify(result.idle))
    console.error(`${opt.tasks} echo tasks`)
    const cpu0 = ticks(proc.pid!)
    result.tasks = { ...await tasks(port, Number(opt.tasks)), nodeCpuSeconds: (ticks(proc.pid!) - cpu0) / 100 }
    result.afterTasksNow = { ...sample(proc.pid!), nodePeakRssMiB: MiB(status(proc.pid!, 'VmHWM')) }
    console.error(`idle after the tasks, ${idleSeconds} s`)
    result.afterTasks = await idle(proc.pid!, idleSeconds)
    console.error(JSON.stringify(result.afterTasks))
  } finally {
    await stop(proc)
  }

  // 3: mDNS on, in a network namespace of its own
  if (!opt['no-netns'] && canUseNetns()) {
    const lan = await createLan(1)
    try {
      const mlog = join(dir, 'mdns.log')
      const child = lan.spawn(lan.hosts[0], [process.execPath, ...argv(join(dir, 'mdns'), true)], { stdio: ['ignore', openSync(mlog, 'w'), openSync(mlog, 'a')] })
      await waitListening(mlog, child)
      // `ip netns exec` becomes the node (it execs it)
      const pid = child.pid!
      console.error(`idle node with mDNS, in a network namespace, ${idleSeconds} s`)
      result.mdnsIdle = await idle(pid, idleSeconds)
      result.mdnsLog = readFileSync(mlog, 'utf8').split('\n').filter((l) => /mdns/i.test(l)).slice(0, 5)
      console.error(JSON.stringify(result.mdnsIdle))
      await stop(child)
    } finally {
      await lan.close()
    }
  } else {
    result.mdnsIdle = 'not measured: needs root and iproute2 (network namespaces)'
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
result.loadavgAfter = loadavg().map((x) => Math.round(x * 100) / 100)
console.log(JSON.stringify(result, null, 2))
if (opt.json) writeFileSync(opt.json, JSON.stringify(result, null, 2) + '\n')
