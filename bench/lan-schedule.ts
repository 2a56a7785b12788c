// Scheduling on a LAN of network namespaces (never on the host's interfaces). Run as root, after
// `npm run build`:
//   node --import tsx bench/lan-schedule.ts [--tasks 30] [--trials 3] [--modes lan,processes,rank,rr] [--timing 5]
//     [--service nap|slow] [--same-hostname]
// Three real nodes with 1, 2 and 3 slots; `--tasks` one-second tasks submitted at once from a
// fourth host, the makespan measured per way of submitting:
//   lan        one process, src/client/lan.ts as the source of candidates, submit() of src/client
//   processes  one `rrcloud SERVICE FILE` process per task, all started at once
//   rank       one process, the scheduler alone: discover() once, rank() + afterSubmit() per task
//   rr         round-robin as a static list gives it: task i straight to node i % 3 (HTTP API)
// The task: `nap` (bench/services/nap.conf, perl sleeps for the seconds in its input; default) or
// `slow` (test/fixtures/services/slow.conf, a Node process per task that starts `sleep`).
// Each run also says where its time went: the first look at the LAN, the last upload accepted,
// and on the node that finished last, how long a task took per slot from its first acceptance on.
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
    service: { type: 'string', default: 'nap' },
    trials: { type: 'string', default: '3' },
    modes: { type: 'string', default: 'lan,processes,rank,rr' },
    timing: { type: 'string', default: '5' },
    // every namespace shares this machine's host name unless given its own (as machines on a LAN have)
    'same-hostname': { type: 'boolean', default: false },
  },
})
const TASKS = Number(o.tasks)
const SERVICE = o.service!
const BENCH_SERVICES = join(root, 'bench', 'services')
/** 6 slots in all: the makespan if every slot ran one-second tasks back to back from the start */
const IDEAL_S = Math.ceil(TASKS / 6)
const hostname = (name: string): string | undefined => o['same-hostname'] ? undefined : `rrt-${name}`
const range = (n: number): number[] => [...Array(n).keys()]

interface TaskRow { id: string, status: string, ctime: number, etime?: number }
interface NodeSpan { tasks: number, firstCtimeMs: number, lastEtimeMs: number }
interface Result {
  mode: string, start: number, submittedMs: number, makespanMs: number, perNode: Record<string, number>, failed: number
  /** loading the modules the mode uses, before start (lan, rank) */
  loadMs: number
  /** start → first candidates known (lan, rank) */
  lookMs?: number
  /** start → the last task accepted (its ctime) */
  acceptedMs: number
  /** per node URL, times from start */
  spans: Record<string, NodeSpan>
  /** `nap` only, from the times it prints: median / max ms of each phase of a task */
  phases?: Record<'firstStart' | 'nextStart' | 'run' | 'finish', [number, number]>
}

const medMax = (xs: number[]): [number, number] => {
  const s = [...xs].sort((a, b) => a - b)
  return [Math.round(s[Math.floor(s.length / 2)] ?? NaN), Math.round(s[s.length - 1] ?? NaN)]
}

/**
 * Where a task's time went, from the start and end times `nap` prints in its log: accepted
 * (ctime) → started when a slot was free at once (firstStart), a slot freed (the node's previous
 * etime) → the next queued task started (nextStart), started → ended (run: the sleep and perl),
 * ended → etime (finish: the node sees the exit and records the output).
 */
async function phases (rows: Array<TaskRow & { node: string }>): Promise<Result['phases']> {
  const timed = await Promise.all(rows.map(async (r) => {
    const log = await (await fetch(`${r.node}/api/v1/tasks/${r.id}/log`)).text()
    const start = Number(/^nap: start (\S+)$/m.exec(log)?.[1])
    const end = Number(/^nap: end (\S+)$/m.exec(log)?.[1])
    return { ...r, start, end, ctimeMs: r.ctime * 1000, etimeMs: (r.etime ?? 0) * 1000 }
  }))
  if (timed.some((t) => !Number.isFinite(t.start) || !Number.isFinite(t.end))) return undefined
  const first: number[] = []
  const next: number[] = []
  for (const t of timed) {
    // the last slot to free on this node before this task started, if it was queued behind it
    const freed = timed.filter((u) => u.node === t.node && u.etimeMs <= t.start && u.etimeMs >= t.ctimeMs).map((u) => u.etimeMs)
    if (freed.length) next.push(t.start - Math.max(...freed))
    else first.push(t.start - t.ctimeMs)
  }
  return {
    firstStart: medMax(first), nextStart: medMax(next),
    run: medMax(timed.map((t) => t.end - t.start)), finish: medMax(timed.map((t) => t.etimeMs - t.end)),
  }
}

// ---------- worker: runs inside the client namespace ----------

/**
 * The scheduler alone, without the client: one discover() (at most 400 ms, less once answers
 * have settled), then each task to the first of rank(), the snapshot moved on with afterSubmit();
 * the uploads all go at once.
 */
async function rankBatch (n: number, looked: () => void): Promise<string[]> {
  const { discover } = await import('../src/discovery/index.js')
  const { rank, afterSubmit } = await import('../src/scheduler/rank.js')
  const found = await discover({ timeoutMs: 400, interface: 'veth0' })
  looked()
  let peers: PeerInfo[] = found.map((p) => ({ ...p.record, name: p.name, url: `http://${p.addresses[0]}:${p.port}` }))
  const picks = range(n).map(() => {
    const best = rank(SERVICE, {}, peers)[0]?.peer
    if (!best) throw new Error(`no peer offers ${SERVICE}`)
    peers = afterSubmit(peers, best.id)
    return best.url
  })
  return Promise.all(picks.map((url) => post(url, '1\n')))
}


async function post (url: string, input: string): Promise<string> {
  const form = new FormData()
  form.append('service', SERVICE)
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
  // the code a mode runs is loaded before the clock starts, as the client's bundle has it at hand:
  // loading it through tsx on a busy machine takes longer than the scheduling it does
  const loading = Date.now()
  if (mode === 'lan') await Promise.all([import('../src/client/lan.js'), import('../src/client/submit.js'), import('../src/discovery/index.js')])
  if (mode === 'rank') await Promise.all([import('../src/scheduler/rank.js'), import('../src/discovery/index.js')])
  const loadMs = Date.now() - loading
  const start = Date.now()
  let lookMs: number | undefined
  const looked = (): void => { lookMs ??= Date.now() - start }
  let ids: string[]
  if (mode === 'rr') ids = await Promise.all(range(TASKS).map((i) => post(urls[i % urls.length], '1\n')))
  else if (mode === 'processes') ids = await Promise.all(range(TASKS).map(() => cli([SERVICE, file], home)))
  else if (mode === 'lan') ids = (await submitThroughLan(TASKS, SERVICE, file, { beforeSubmit: async () => looked() })).map((p) => p.id)
  else if (mode === 'rank') ids = await rankBatch(TASKS, looked)
  else throw new Error(`unknown mode ${mode}`)
  const submittedMs = Date.now() - start
  const done = await waitAll(urls, ids)
  const rows = [...done.values()]
  const perNode: Record<string, number> = {}
  const spans: Record<string, NodeSpan> = {}
  const at = (seconds: number): number => Math.round(seconds * 1000 - start)
  for (const r of rows) {
    perNode[r.node] = (perNode[r.node] ?? 0) + 1
    const sp = spans[r.node] ??= { tasks: 0, firstCtimeMs: Infinity, lastEtimeMs: 0 }
    sp.tasks++
    sp.firstCtimeMs = Math.min(sp.firstCtimeMs, at(r.ctime))
    sp.lastEtimeMs = Math.max(sp.lastEtimeMs, at(r.etime ?? 0))
  }
  const last = Math.max(...rows.map((r) => (r.etime ?? 0) * 1000))
  const acceptedMs = Math.max(...rows.map((r) => at(r.ctime)))
  const result: Result = {
    mode, start, submittedMs, makespanMs: Math.round(last - start), perNode, failed: rows.filter((r) => r.status !== 'complete').length,
    loadMs, lookMs, acceptedMs, spans, phases: SERVICE === 'nap' ? await phases(rows) : undefined,
  }
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
    '--nodes', nodes.map((n) => n.url).join(','), '--tasks', String(TASKS), '--service', SERVICE], { cwd: root, env: { ...process.env, RRCLOUD_INTERFACE: 'veth0' } })
  let err = ''
  child.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise<never>((resolve, reject) => child.once('close', (code) => reject(new Error(`worker ${mode} exited ${code}: ${err.slice(-1500)}`))))
  return Promise.race([lines<Result>(child).wait((l) => l.mode === mode, 240_000, `worker ${mode}`), exited])
}

interface PeersRun { start: number, end: number, ids: string[], ok: boolean }

/** The real CLI, `rrcloud peers --json`, again and again in the client namespace, each run with its start, end and ids. */
function peersLoop (nl: NodeLan): { runs: PeersRun[], stop: () => Promise<void> } {
  const runs: PeersRun[] = []
  let stopped = false
  const done = (async () => {
    while (!stopped) {
      const start = Date.now()
      const r = await nl.rrcloud(['peers', '--json'], { timeoutMs: 10_000 })
      let ids: string[] = []
      let ok = r.code === 0
      try { ids = (JSON.parse(r.stdout) as Array<{ id: string }>).map((p) => p.id) } catch { ok = false }
      runs.push({ start, end: Date.now(), ids, ok })
      if (!ok) await sleep(200)
    }
  })()
  return { runs, stop: async () => { stopped = true; await done } }
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
    const slots = [1, 2, 3]
    const nodes = await Promise.all([h1, h2, h3].map((h, i) => nl.startNode(h, { name: `n${i + 1}`, slots: slots[i], hostname: hostname(`n${i + 1}`), serviceDirs: [BENCH_SERVICES] })))
    const short = (url: string): string => nodes.find((n) => n.url === url)?.name ?? url
    await until(async () => ((await nl.http(`${nodes[0].url}/api/v1/peers`)).body as unknown[]).length === nodes.length - 1, 10_000, 'nodes to see each other')

    // one task alone: what a "one-second" task really costs here
    const units: number[] = []
    for (let i = 0; i < 3; i++) {
      await idle(nl, nodes)
      const t = (await nl.http(`${nodes[2].url}/api/v1/tasks`, { method: 'POST', form: { service: SERVICE }, files: { fileIn0: nl.slowInput(1) } })).body as TaskRow
      const single = await until(async () => {
        const x = (await nl.http(`${nodes[2].url}/api/v1/tasks/${t.id}`)).body as TaskRow
        return ['complete', 'failed'].includes(x.status) && x
      }, 20_000, 'single task')
      if (single.status !== 'complete') throw new Error(`a single ${SERVICE} task failed: ${JSON.stringify(single)}`)
      units.push(Math.round((single.etime! - single.ctime) * 1000))
    }
    say(`service \`${SERVICE}\`; a single one-second task alone, ctime → etime: ${units.join(', ')} ms; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`)

    const results: Result[] = []
    for (let trial = 0; trial < Number(o.trials); trial++) {
      for (const mode of o.modes!.split(',')) {
        await idle(nl, nodes)
        try {
          const r = await runWorker(nl, mode, nodes)
          results.push(r)
          // the node that finished last: from its first acceptance, how long each task took per slot
          const [critUrl, crit] = Object.entries(r.spans).sort((a, b) => b[1].lastEtimeMs - a[1].lastEtimeMs)[0]
          const k = slots[nodes.findIndex((n) => n.url === critUrl)]
          const perSlot = Math.round((crit.lastEtimeMs - crit.firstCtimeMs) / (crit.tasks / k))
          say(`${mode}: makespan ${r.makespanMs} ms, submit ${r.submittedMs} ms, ${Object.entries(r.perNode).map(([u, n]) => `${short(u)}=${n}`).join(' ')}${r.failed ? `, ${r.failed} failed` : ''}; ` +
            `${r.loadMs ? `(code loaded beforehand in ${r.loadMs} ms) ` : ''}${r.lookMs === undefined ? '' : `first look ${r.lookMs} ms, `}last accepted ${r.acceptedMs} ms; last to finish ${short(critUrl)} (${crit.tasks} tasks on ${k} slots): ` +
            `first accepted ${crit.firstCtimeMs} ms, done ${crit.lastEtimeMs} ms, ${perSlot} ms per task in a slot` +
            (r.phases ? `; per task median/max: accepted → started ${r.phases.firstStart.join('/')}, slot freed → next started ${r.phases.nextStart.join('/')}, ` +
              `run ${r.phases.run.join('/')}, ended → etime ${r.phases.finish.join('/')} ms` : ''))
        } catch (e) { say(`${mode}: failed: ${(e as Error).message.replace(/\s+/g, ' ').slice(0, 800)}`) }
      }
    }
    say()
    say(`service \`${SERVICE}\`, ${TASKS} tasks; ideal ${IDEAL_S} s`)
    say('| way of submitting | trials | makespan min / median / max (ms) | × ideal (median) | tasks per node n1/n2/n3 (last trial) |')
    say('|---|---|---|---|---|')
    for (const mode of o.modes!.split(',')) {
      const rs = results.filter((r) => r.mode === mode)
      if (!rs.length) { say(`| ${mode} | 0 | failed | | |`); continue }
      const ms = rs.map((r) => r.makespanMs).sort((a, b) => a - b)
      const med = ms[Math.floor(ms.length / 2)]
      const per = rs[rs.length - 1].perNode
      say(`| ${mode} | ${rs.length} | ${ms[0]} / ${med} / ${ms[ms.length - 1]} | ${(med / (IDEAL_S * 1000)).toFixed(2)} | ${nodes.map((n) => per[n.url] ?? 0).join('/')} |`)
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
  const listedStart: number[] = []
  const all: PeersRun[] = []
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
        listedStart.push(listed.start - probe.spawnedAt)
        line += `, listed ${appear.at(-1)} ms after spawn (${appearListening.at(-1)} after listening) by a run started ${listedStart.at(-1)} ms after spawn`
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
      await loop.stop()
      all.push(...loop.runs)
    }
  }
  const n1 = nodes[0]
  for (let i = 0; i < 2 * Number(o.timing); i++) {
    await idle(nl, [n1])
    const task = (await nl.submitSlow(n1, 1)).body as TaskRow
    const seen = await events.wait((l) => l.event === 'update' && l.peer.record.id === n1.id && l.peer.record.free === 0 && l.t >= task.ctime * 1000 - 5, 5000, 'update')
    update.push(Math.round(seen.t - task.ctime * 1000))
  }
  const fixed = nodes.map((n) => n.id)
  const ok = all.filter((r) => r.ok)
  const missing = ok.filter((r) => fixed.some((id) => !r.ids.includes(id))).length
  say()
  say(`\`rrcloud peers --json\` runs: ${all.length}, ${all.length - ok.length} failed, ${missing} of ${ok.length} missed one of the three live nodes; ` +
    `run length min / p50 / p90 / max ${stats(ok.map((r) => r.end - r.start)).split(' | ').slice(1).join(' / ')} ms`)
  say()
  say('| measure (ms) | n | min | p50 | p90 | max | goal |')
  say('|---|---|---|---|---|---|---|')
  say(`| node process spawned → 'up' in a running browser | ${stats(appearBrowser)} | |`)
  say(`| node listening (log line) → 'up' in a running browser | ${stats(appearBrowserListening)} | |`)
  say(`| node process spawned → listed by \`rrcloud peers\` | ${stats(appear)} | ≤ 1500 |`)
  say(`| node listening (log line) → listed by \`rrcloud peers\` | ${stats(appearListening)} | |`)
  say(`| node process spawned → start of the first \`rrcloud peers\` run that lists it | ${stats(listedStart)} | |`)
  say(`| SIGKILL → a \`rrcloud peers\` started after it does not list it | ${stats(gone)} | ≤ 6000 |`)
  say(`| SIGKILL → 'down' in a running browser | ${stats(goneBrowser)} | ≤ 6000 |`)
  say(`| task accepted (its ctime) → running browser sees free 0 | ${stats(update)} | ≤ 1000 |`)
}

if (o.worker) await worker(o.worker)
else await orchestrate()
process.exit(0)
