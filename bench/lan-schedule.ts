// Scheduling on a LAN of network namespaces (never on the host's interfaces). Run as root, after
// `npm run build`:
//   node --import tsx bench/lan-schedule.ts [--tasks 30] [--trials 3] [--modes lan,processes,rank,rr] [--timing 5] [--same-hostname]
// Three real nodes with 1, 2 and 3 slots; `--tasks` one-second `slow` tasks submitted at once from
// a fourth host, the makespan measured per way of submitting:
//   lan        one process, src/client/lan.ts as the source of candidates, submit() of src/client
//   processes  one `rrcloud slow FILE` process per task, all started at once
//   rank       one process, the scheduler alone: discover() once, rank() + afterSubmit() per task
//   rr         round-robin as a static list gives it: task i straight to node i % 3 (HTTP API)
// then discovery timings with the CLI: node start → listed by `rrcloud peers`, SIGKILL → no longer
// listed, a task accepted → a running browser sees the new free/queue. Prints a markdown report.
// The same file runs as the worker inside the client's namespace (--worker MODE).
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import type { PeerInfo } from '../src/scheduler/rank.js'
import { canUseNetns, lines } from '../test/helpers/netns.js'
import { BIN, createNodeLan, root, submitThroughLan, until, type LanNode, type NodeLan } from '../test/helpers/lan.js'

const { values: o } = parseArgs({
  options: {
    worker: { type: 'string' },
    nodes: { type: 'string', default: '' },
    tasks: { type: 'string', default: '30' },
    trials: { type: 'string', default: '3' },
    modes: { type: 'string', default: 'lan,processes,rank,rr' },
    timing: { type: 'string', default: '5' },
    // every namespace shares this machine's host name unless given its own (as machines on a LAN have)
    'same-hostname': { type: 'boolean', default: false },
  },
})
const TASKS = Number(o.tasks)
const hostname = (name: string): string | undefined => o['same-hostname'] ? undefined : `rrt-${name}`
const range = (n: number): number[] => [...Array(n).keys()]

interface TaskRow { id: string, status: string, ctime: number, etime?: number }
interface Result { mode: string, start: number, submittedMs: number, makespanMs: number, perNode: Record<string, number>, failed: number }

// ---------- worker: runs inside the client namespace ----------

/**
 * The scheduler alone, without the client: one discover() (400 ms), then each task to the first
 * of rank(), the snapshot moved on with afterSubmit(); the uploads all go at once.
 */
async function rankBatch (n: number): Promise<string[]> {
  const { discover } = await import('../src/discovery/index.js')
  const { rank, afterSubmit } = await import('../src/scheduler/rank.js')
  const found = await discover({ timeoutMs: 400, interface: 'veth0' })
  let peers: PeerInfo[] = found.map((p) => ({ ...p.record, name: p.name, url: `http://${p.addresses[0]}:${p.port}` }))
  const picks = range(n).map(() => {
    const best = rank('slow', {}, peers)[0]?.peer
    if (!best) throw new Error('no peer offers slow')
    peers = afterSubmit(peers, best.id)
    return best.url
  })
  return Promise.all(picks.map((url) => post(url, '1\n')))
}


async function post (url: string, input: string): Promise<string> {
  const form = new FormData()
  form.append('service', 'slow')
  form.append('fileIn0', new Blob([input]), 'in.txt')
  const r = await fetch(`${url}/api/v1/tasks`, { method: 'POST', body: form, headers: { accept: 'application/json' } })
  if (r.status !== 201) throw new Error(`${url}: ${r.status} ${await r.text()}`)
  return ((await r.json()) as TaskRow).id
}

function cli (argv: string[], home: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [BIN, ...argv], { cwd: home, env: { PATH: process.env.PATH, HOME: home, RRCLOUD_INTERFACE: 'veth0' } })
    let out = ''
    let err = ''
    c.stdout.on('data', (d: Buffer) => { out += d.toString() })
    c.stderr.on('data', (d: Buffer) => { err += d.toString() })
    c.once('close', (code) => {
      const m = /^id: (\S+)$/m.exec(out)
      if (code === 0 && m) resolve(m[1])
      else reject(new Error(`rrcloud ${argv.join(' ')}: exit ${code}: ${err}`))
    })
  })
}

/** Polls every node until all ids ended; returns each task with the node that ran it. */
async function waitAll (urls: string[], ids: string[]): Promise<Map<string, TaskRow & { node: string }>> {
  const want = new Set(ids)
  const seen = new Map<string, TaskRow & { node: string }>()
  const end = Date.now() + 180_000
  while (Date.now() < end) {
    for (const url of urls) {
      const list = await (await fetch(`${url}/api/v1/tasks`, { headers: { accept: 'application/json' } })).json() as TaskRow[]
      for (const t of list) if (want.has(t.id)) seen.set(t.id, { ...t, node: url })
    }
    if (ids.every((id) => ['complete', 'failed', 'cancelled'].includes(seen.get(id)?.status ?? ''))) return seen
    await sleep(100)
  }
  throw new Error('tasks did not end within 180 s')
}

async function worker (mode: string): Promise<void> {
  const urls = o.nodes!.split(',')
  const home = mkdtempSync(join(tmpdir(), 'rrt-bench-'))
  process.once('exit', () => rmSync(home, { recursive: true, force: true }))
  const file = join(home, 'in.txt')
  writeFileSync(file, '1\n')
  const start = Date.now()
  let ids: string[]
  if (mode === 'rr') ids = await Promise.all(range(TASKS).map((i) => post(urls[i % urls.length], '1\n')))
  else if (mode === 'processes') ids = await Promise.all(range(TASKS).map(() => cli(['slow', file], home)))
  else if (mode === 'lan') ids = (await submitThroughLan(TASKS, 'slow', file)).map((p) => p.id)
  else if (mode === 'rank') ids = await rankBatch(TASKS)
  else throw new Error(`unknown mode ${mode}`)
  const submittedMs = Date.now() - start
  const done = await waitAll(urls, ids)
  const rows = [...done.values()]
  const perNode: Record<string, number> = {}
  for (const r of rows) perNode[r.node] = (perNode[r.node] ?? 0) + 1
  const last = Math.max(...rows.map((r) => (r.etime ?? 0) * 1000))
  const result: Result = { mode, start, submittedMs, makespanMs: Math.round(last - start), perNode, failed: rows.filter((r) => r.status !== 'complete').length }
  process.stdout.write(JSON.stringify(result) + '\n')
}

// ---------- orchestrator: host namespace, talks to the LAN only through processes inside it ----------

const stats = (xs: number[]): string => {
  const s = [...xs].sort((a, b) => a - b)
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))]
  return s.length ? `${s.length} | ${s[0]} | ${q(0.5)} | ${q(0.9)} | ${s[s.length - 1]}` : '0 | | | |'
}

async function idle (nl: NodeLan, nodes: LanNode[]): Promise<void> {
  await until(async () => {
    for (const n of nodes) {
      const m = (await nl.http(`${n.url}/api/v1/meta`)).body
      if (m.free !== m.slots || m.queue !== 0) return false
    }
    return true
  }, 120_000, 'idle nodes', 200)
  await sleep(1500) // the TXT of the last change has gone out
}

function runWorker (nl: NodeLan, mode: string, nodes: LanNode[]): Promise<Result> {
  const child = nl.lan.spawn(nl.client, [process.execPath, '--import', 'tsx', 'bench/lan-schedule.ts', '--worker', mode,
    '--nodes', nodes.map((n) => n.url).join(','), '--tasks', String(TASKS)], { cwd: root, env: { ...process.env, RRCLOUD_INTERFACE: 'veth0' } })
  let err = ''
  child.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise<never>((resolve, reject) => child.once('close', (code) => reject(new Error(`worker ${mode} exited ${code}: ${err.slice(-1500)}`))))
  return Promise.race([lines<Result>(child).wait((l) => l.mode === mode, 240_000, `worker ${mode}`), exited])
}

/** `rrcloud peers --json` again and again in the client namespace, each run with its start, end and ids. */
function peersLoop (nl: NodeLan): { runs: Array<{ start: number, end: number, ids: string[] }>, stop: () => void } {
  const runs: Array<{ start: number, end: number, ids: string[] }> = []
  let stopped = false
  void (async () => {
    while (!stopped) {
      const start = Date.now()
      const r = await nl.rrcloud(['peers', '--json'], { timeoutMs: 10_000 })
      let ids: string[] = []
      try { ids = (JSON.parse(r.stdout) as Array<{ id: string }>).map((p) => p.id) } catch { await sleep(200) }
      runs.push({ start, end: Date.now(), ids })
    }
  })()
  return { runs, stop: () => { stopped = true } }
}

async function orchestrate (): Promise<void> {
  if (!canUseNetns()) {
    console.error('needs root and iproute2: the benchmark runs in network namespaces')
    process.exit(1)
  }
  const nl = await createNodeLan(4, 2)
  const out: string[] = []
  const say = (s = ''): void => { out.push(s); console.error(s) }
  try {
    const [h1, h2, h3, hp, , hw] = nl.hosts
    const nodes = await Promise.all([h1, h2, h3].map((h, i) => nl.startNode(h, { name: `n${i + 1}`, slots: i + 1, hostname: hostname(`n${i + 1}`) })))
    const short = (url: string): string => nodes.find((n) => n.url === url)?.name ?? url
    await until(async () => ((await nl.http(`${nodes[0].url}/api/v1/peers`)).body as unknown[]).length === 3, 10_000, 'nodes to see each other')

    // one task alone: what a "one-second" task really costs here (a node process per task)
    await idle(nl, nodes)
    const t = (await nl.submitSlow(nodes[2], 1)).body as TaskRow
    const single = await until(async () => {
      const x = (await nl.http(`${nodes[2].url}/api/v1/tasks/${t.id}`)).body as TaskRow
      return x.status === 'complete' && x
    }, 20_000, 'single task')
    const unit = Math.round((single.etime! - single.ctime) * 1000)
    say(`single \`slow 1\` task alone, ctime → etime: ${unit} ms; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`)

    const results: Result[] = []
    for (let trial = 0; trial < Number(o.trials); trial++) {
      for (const mode of o.modes!.split(',')) {
        await idle(nl, nodes)
        try {
          const r = await runWorker(nl, mode, nodes)
          results.push(r)
          say(`${mode}: makespan ${r.makespanMs} ms, submit ${r.submittedMs} ms, ${Object.entries(r.perNode).map(([u, k]) => `${short(u)}=${k}`).join(' ')}${r.failed ? `, ${r.failed} failed` : ''}`)
        } catch (e) { say(`${mode}: ${(e as Error).message.split('\n')[0]}`) }
      }
    }
    say()
    say('| way of submitting | trials | makespan min / median / max (ms) | × ideal 5 s (median) | tasks per node n1/n2/n3 (last trial) |')
    say('|---|---|---|---|---|')
    for (const mode of o.modes!.split(',')) {
      const rs = results.filter((r) => r.mode === mode)
      if (!rs.length) { say(`| ${mode} | 0 | failed | | |`); continue }
      const ms = rs.map((r) => r.makespanMs).sort((a, b) => a - b)
      const med = ms[Math.floor(ms.length / 2)]
      const per = rs[rs.length - 1].perNode
      say(`| ${mode} | ${rs.length} | ${ms[0]} / ${med} / ${ms[ms.length - 1]} | ${(med / 5000).toFixed(2)} | ${nodes.map((n) => per[n.url] ?? 0).join('/')} |`)
    }
    await timings(nl, nodes, hp, hw, say)
  } finally {
    await nl.close()
  }
  process.stdout.write(out.join('\n') + '\n')
}

async function timings (nl: NodeLan, nodes: LanNode[], hp: NodeLan['client'], hw: NodeLan['client'], say: (s?: string) => void): Promise<void> {
  const appear: number[] = []
  const appearBrowser: number[] = []
  const appearBrowserListening: number[] = []
  const appearListening: number[] = []
  const gone: number[] = []
  const goneBrowser: number[] = []
  const update: number[] = []
  const browser = nl.lan.spawn(hw, [process.execPath, '--import', 'tsx', 'test/fixtures/browse.ts', '--interface', 'veth0'], { cwd: root })
  const events = lines<Record<string, any>>(browser)
  await events.wait((l) => l.event === 'ready', 10_000, 'browser')
  for (let i = 0; i < Number(o.timing); i++) {
    const loop = peersLoop(nl)
    try {
      await sleep(1500)
      const probe = await nl.startNode(hp, { name: `probe${i}`, slots: 1, hostname: hostname(`probe${i}`) })
      const up = await events.wait((l) => l.event === 'up' && l.peer.record.id === probe.id, 10_000, 'probe up')
      appearBrowser.push(up.t - probe.spawnedAt)
      appearBrowserListening.push(up.t - probe.listeningAt)
      let line = `probe ${i}: browser 'up' ${appearBrowser.at(-1)} ms after spawn (${appearBrowserListening.at(-1)} after listening)`
      const listed = await until(() => loop.runs.find((r) => r.ids.includes(probe.id)), 15_000, 'probe listed by rrcloud peers', 20).catch((e: Error) => say(e.message))
      if (listed) {
        appear.push(listed.end - probe.spawnedAt)
        appearListening.push(listed.end - probe.listeningAt)
        line += `, listed ${appear.at(-1)} ms after spawn (${appearListening.at(-1)} after listening)`
      }
      await sleep(1000 + Math.random() * 1000)
      const killedAt = Date.now()
      await probe.stop('SIGKILL')
      if (listed) {
        const after = await until(() => loop.runs.find((r) => r.start >= killedAt && !r.ids.includes(probe.id)), 15_000, 'probe unlisted', 20)
        gone.push(after.end - killedAt)
        line += `, unlisted ${gone.at(-1)} ms after SIGKILL`
      }
      const down = await events.wait((l) => l.event === 'down' && l.peer.record.id === probe.id, 10_000, 'probe down')
      goneBrowser.push(down.t - killedAt)
      say(`${line}, browser 'down' ${goneBrowser.at(-1)} ms after SIGKILL`)
    } finally {
      loop.stop()
    }
  }
  const n1 = nodes[0]
  for (let i = 0; i < 2 * Number(o.timing); i++) {
    await idle(nl, [n1])
    const task = (await nl.submitSlow(n1, 1)).body as TaskRow
    const seen = await events.wait((l) => l.event === 'update' && l.peer.record.id === n1.id && l.peer.record.free === 0 && l.t >= task.ctime * 1000 - 5, 5000, 'update')
    update.push(Math.round(seen.t - task.ctime * 1000))
  }
  say()
  say('| measure (ms) | n | min | p50 | p90 | max | goal |')
  say('|---|---|---|---|---|---|---|')
  say(`| node process spawned → 'up' in a running browser | ${stats(appearBrowser)} | |`)
  say(`| node listening (log line) → 'up' in a running browser | ${stats(appearBrowserListening)} | |`)
  say(`| node process spawned → listed by \`rrcloud peers\` | ${stats(appear)} | ≤ 1500 |`)
  say(`| node listening (log line) → listed by \`rrcloud peers\` | ${stats(appearListening)} | |`)
  say(`| SIGKILL → a \`rrcloud peers\` started after it does not list it | ${stats(gone)} | ≤ 6000 |`)
  say(`| SIGKILL → 'down' in a running browser | ${stats(goneBrowser)} | ≤ 6000 |`)
  say(`| task accepted (its ctime) → running browser sees free 0 | ${stats(update)} | ≤ 1000 |`)
}

if (o.worker) await worker(o.worker)
else await orchestrate()
process.exit(0)
