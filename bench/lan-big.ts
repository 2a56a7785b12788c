// A LAN of many nodes in network namespaces (never on the host's interfaces). Run as root, after
// `npm run build`:
//   node --import tsx bench/lan-big.ts [--nodes 30] [--listing 10] [--window 20] [--loaded 10]
//     [--trials 3] [--tasks 60] [--avahi 30] [--parts listing,traffic,spread,avahi]
// `--nodes` real `rrcloud node` processes (bin/run.js, 1 slot each, the `nap` service of
// bench/services, a host name of their own), one per host namespace, plus a client host:
//   listing  `rrcloud peers --json` run `--listing` times in the client namespace: nodes listed, wall time
//   traffic  mDNS (UDP 5353) seen by a socket joined to 224.0.0.251 in the client namespace over
//            `--window` seconds: the nodes idle, then with `--loaded` of them getting a one-second
//            `nap` task every ~1.2 s (free/queue change all the time), then the same with one live
//            view of the LAN (an events stream of n1 subscribed to peers, as its dashboard is), then
//            that view with the nodes idle; per source, queries vs answers vs unsolicited
//            responses, sizes
//   spread   `--tasks` one-second `nap` tasks submitted at once by one process through
//            src/client/lan.ts (as submitThroughLan of test/helpers/lan.ts, each task with an input
//            of its own so that no result comes from a node's cache), `--trials` times
//   avahi    then on a LAN of its own: `--avahi` avahi-daemons each publishing one static
//            `_rrcloud._tcp` service (the TXT a node published), no rrcloud process; the same
//            window, first with the daemons alone, then with `avahi-browse -r _rrcloud._tcp` on one
//            host, then on each
// Prints a markdown report. The same file runs the workers inside the namespaces (--worker).
import { spawn } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { canUseNetns, createLan, lines, type Lan, type LanHost } from '../test/helpers/netns.js'
import { createNodeLan, root, until, type LanNode, type NodeLan } from '../test/helpers/lan.js'

const { values: o } = parseArgs({
  options: {
    worker: { type: 'string' },
    nodes: { type: 'string', default: '30' },
    urls: { type: 'string', default: '' },
    listing: { type: 'string', default: '10' },
    window: { type: 'string', default: '20' },
    loaded: { type: 'string', default: '10' },
    trials: { type: 'string', default: '3' },
    tasks: { type: 'string', default: '60' },
    avahi: { type: 'string', default: '' },
    address: { type: 'string', default: '' },
    parts: { type: 'string', default: 'listing,traffic,spread,avahi' },
  },
})
const NODES = Number(o.nodes)
const WINDOW_S = Number(o.window)
const LOADED = Math.min(Number(o.loaded), NODES)
const TASKS = Number(o.tasks)
const AVAHI = Number(o.avahi || o.nodes)
const PARTS = new Set(o.parts!.split(','))
const BENCH_SERVICES = join(root, 'bench', 'services')
/** Ethernet (14) + IPv4 (20) + UDP (8) headers around each mDNS payload */
const WIRE_OVERHEAD = 42
const la = (): string => loadavg().map((x) => x.toFixed(2)).join(' ')
const range = (n: number): number[] => [...Array(n).keys()]
/** what to close when the run is interrupted */
const closers = new Set<() => Promise<void>>()

// ---------- workers: run inside a namespace ----------

interface SourceCount { packets: number, bytes: number, queries: number, answers: number, unsolicited: number, knownAnswers: number }
interface Count {
  seconds: number, packets: number, bytes: number
  queries: number, queryBytes: number
  /** responses within ANSWER_MS of a query seen on the LAN */
  answers: number, answerBytes: number
  /** responses with no query just before: announcements, TXT updates, goodbyes */
  unsolicited: number, unsolicitedBytes: number
  /** questions by `name type`, over all queries */
  questions: Record<string, number>
  /** record types in responses (answers + additionals) */
  recordTypes: Record<string, number>
  /** queries that carried known answers, and how many in all */
  queriesWithKnown: number, knownAnswers: number
  undecoded: number
  /** ms between one query and the next (any sender) */
  queryGapsMs: number[]
  /** per query of `_rrcloud._tcp` PTR: responses within ANSWER_MS, and the last one's delay (ms) */
  ptrAnswers: Array<{ n: number, lastMs: number }>
  bySource: Record<string, SourceCount>
  /** the TXT strings of the first `_rrcloud._tcp` instance seen */
  txt?: string[]
}
const ANSWER_MS = 150

/**
 * Counts mDNS packets reaching this host: a socket bound to 5353 and joined to 224.0.0.251 on the
 * host's address sends nothing; every multicast packet on the bridge reaches every host.
 */
async function counter (address: string, seconds: number): Promise<void> {
  const dns = createRequire(join(root, 'package.json'))('dns-packet') as { decode (b: Buffer): any }
  const sock = createSocket({ type: 'udp4', reuseAddr: true })
  await new Promise<void>((resolve, reject) => { sock.once('error', reject); sock.bind(5353, resolve) })
  sock.addMembership('224.0.0.251', address)
  const c: Count = {
    seconds, packets: 0, bytes: 0, queries: 0, queryBytes: 0, answers: 0, answerBytes: 0, unsolicited: 0, unsolicitedBytes: 0,
    questions: {}, recordTypes: {}, queriesWithKnown: 0, knownAnswers: 0, undecoded: 0, queryGapsMs: [], ptrAnswers: [], bySource: {},
  }
  let counting = false
  let lastQueryAt = 0
  let lastPtr: { n: number, lastMs: number } | undefined
  sock.on('message', (msg, rinfo) => {
    if (!counting) return
    const now = Date.now()
    const s = c.bySource[rinfo.address] ??= { packets: 0, bytes: 0, queries: 0, answers: 0, unsolicited: 0, knownAnswers: 0 }
    c.packets++; c.bytes += msg.length; s.packets++; s.bytes += msg.length
    let p: any
    try { p = dns.decode(msg) } catch { c.undecoded++; return }
    if (p.type === 'query') {
      if (lastQueryAt && counting) c.queryGapsMs.push(now - lastQueryAt)
      lastQueryAt = now
      if ((p.questions ?? []).some((x: { name: string, type: string }) => x.type === 'PTR' && /^_rrcloud\._tcp\.local$/i.test(x.name))) {
        lastPtr = { n: 0, lastMs: 0 }
        c.ptrAnswers.push(lastPtr)
      }
      c.queries++; c.queryBytes += msg.length; s.queries++
      for (const q of p.questions ?? []) c.questions[`${q.name} ${q.type}`] = (c.questions[`${q.name} ${q.type}`] ?? 0) + 1
      const known = (p.answers ?? []).length
      if (known) { c.queriesWithKnown++; c.knownAnswers += known; s.knownAnswers += known }
      return
    }
    if (lastPtr && now - lastQueryAt <= ANSWER_MS) { lastPtr.n++; lastPtr.lastMs = now - lastQueryAt }
    if (now - lastQueryAt <= ANSWER_MS) { c.answers++; c.answerBytes += msg.length; s.answers++ } else { c.unsolicited++; c.unsolicitedBytes += msg.length; s.unsolicited++ }
    for (const r of [...p.answers ?? [], ...p.additionals ?? []]) {
      c.recordTypes[r.type] = (c.recordTypes[r.type] ?? 0) + 1
      if (!c.txt && r.type === 'TXT' && /\._rrcloud\._tcp\.local$/i.test(r.name) && r.ttl > 0) c.txt = (r.data as Buffer[]).map(String)
    }
  })
  // the orchestrator says when to start: the window is measured from that line on
  process.stdout.write(JSON.stringify({ event: 'ready' }) + '\n')
  await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()))
  counting = true
  await sleep(seconds * 1000)
  counting = false
  sock.close()
  process.stdout.write(JSON.stringify({ event: 'count', count: c }) + '\n')
}

/** Keeps nodes busy: a one-second `nap` task to each every ~1.2 s, until killed. */
async function loader (urls: string[]): Promise<void> {
  let sent = 0
  let failed = 0
  let nonce = 0
  const post = async (url: string): Promise<void> => {
    const form = new FormData()
    form.append('service', 'nap')
    // a distinct input each time: the node's result cache would complete a repeated one at once
    form.append('fileIn0', new Blob([`1\n# ${process.pid}-${++nonce}\n`]), 'in.txt')
    const r = await fetch(`${url}/api/v1/tasks`, { method: 'POST', body: form, headers: { accept: 'application/json' } })
    await r.arrayBuffer()
    if (r.status === 201) sent++
    else failed++
  }
  setInterval(() => process.stdout.write(JSON.stringify({ event: 'load', sent, failed }) + '\n'), 1000)
  process.stdout.write(JSON.stringify({ event: 'ready' }) + '\n')
  await Promise.all(urls.map(async (url, i) => {
    await sleep(i * 1200 / urls.length)
    for (;;) {
      const at = Date.now()
      await post(url).catch(() => { failed++ })
      await sleep(Math.max(0, 1100 + Math.random() * 200 - (Date.now() - at)))
    }
  }))
}

interface TaskRow { id: string, status: string, ctime: number, etime?: number, cached?: string }
interface SpreadResult {
  makespanMs: number, submittedMs: number, lookMs?: number, acceptedMs: number, perNode: Record<string, number>, failed: number, cached: number, loadMs: number
  /** from the times `nap` prints: median / max ms */
  phases?: { firstStart: [number, number], nextStart: [number, number], run: [number, number] }
}

const medMax = (xs: number[]): [number, number] => {
  const s = [...xs].sort((a, b) => a - b)
  return [Math.round(s[Math.floor(s.length / 2)] ?? NaN), Math.round(s[s.length - 1] ?? NaN)]
}

/**
 * One process submits `tasks` one-second `nap` tasks at once, as test/helpers/lan.ts's
 * submitThroughLan does (src/client/lan.ts's source asked for candidates before each, submit() of
 * src/client), each with an input of its own (the same input twice would come from the node's
 * result cache); then polls the nodes until all ended.
 */
async function spreader (urls: string[], tasks: number): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'rrt-spread-'))
  process.once('exit', () => rmSync(home, { recursive: true, force: true }))
  const files = range(tasks).map((i) => {
    const f = join(home, `in-${i}.txt`)
    writeFileSync(f, `1\n# ${process.pid}-${Date.now()}-${i}\n`)
    return f
  })
  // the client's code is loaded before the clock starts, as its bundle has it at hand
  const loading = Date.now()
  const { createLanSource } = await import('../src/client/lan.js')
  const { submit } = await import('../src/client/submit.js')
  await import('../src/discovery/index.js')
  const loadMs = Date.now() - loading
  const start = Date.now()
  let lookMs: number | undefined
  const source = createLanSource({ interface: 'veth0' })
  let ids: string[]
  try {
    const jobs: Array<Promise<string>> = []
    for (let i = 0; i < tasks; i++) {
      const candidates = await source.candidates('nap')
      lookMs ??= Date.now() - start
      jobs.push(submit(candidates as Parameters<typeof submit>[0], undefined, { service: 'nap', inputs: [{ path: files[i] }] }).then(({ task }) => task.id))
    }
    ids = await Promise.all(jobs)
  } finally {
    await (source as { close?: () => Promise<void> | void }).close?.()
  }
  const submittedMs = Date.now() - start
  const want = new Set(ids)
  const seen = new Map<string, TaskRow & { node: string }>()
  const end = Date.now() + 180_000
  for (;;) {
    await Promise.all(urls.map(async (url) => {
      const list = await (await fetch(`${url}/api/v1/tasks`, { headers: { accept: 'application/json' } })).json() as TaskRow[]
      for (const t of list) if (want.has(t.id)) seen.set(t.id, { ...t, node: url })
    }))
    if (ids.every((id) => ['complete', 'failed', 'cancelled'].includes(seen.get(id)?.status ?? ''))) break
    if (Date.now() > end) throw new Error('tasks did not end within 180 s')
    await sleep(200)
  }
  const rows = [...seen.values()]
  const perNode: Record<string, number> = {}
  for (const r of rows) perNode[r.node] = (perNode[r.node] ?? 0) + 1
  const timed = await Promise.all(rows.map(async (r) => {
    const log = await (await fetch(`${r.node}/api/v1/tasks/${r.id}/log`)).text()
    return { ...r, start: Number(/^nap: start (\S+)$/m.exec(log)?.[1]), end: Number(/^nap: end (\S+)$/m.exec(log)?.[1]), ctimeMs: r.ctime * 1000, etimeMs: (r.etime ?? 0) * 1000 }
  }))
  let phases: SpreadResult['phases']
  if (timed.every((t) => Number.isFinite(t.start) && Number.isFinite(t.end))) {
    const first: number[] = []
    const next: number[] = []
    for (const t of timed) {
      const freed = timed.filter((u) => u.node === t.node && u.etimeMs <= t.start && u.etimeMs >= t.ctimeMs).map((u) => u.etimeMs)
      if (freed.length) next.push(t.start - Math.max(...freed))
      else first.push(t.start - t.ctimeMs)
    }
    phases = { firstStart: medMax(first), nextStart: medMax(next), run: medMax(timed.map((t) => t.end - t.start)) }
  }
  const result: SpreadResult = {
    makespanMs: Math.round(Math.max(...rows.map((r) => (r.etime ?? 0) * 1000)) - start), submittedMs, lookMs,
    acceptedMs: Math.round(Math.max(...rows.map((r) => r.ctime * 1000)) - start), perNode,
    failed: rows.filter((r) => r.status !== 'complete').length, cached: rows.filter((r) => r.cached).length, loadMs, phases,
  }
  process.stdout.write(JSON.stringify({ event: 'spread', result }) + '\n')
}

// ---------- orchestrator: host namespace, reaches the LAN only through processes inside it ----------

/** The environment of processes in the client namespace: mDNS on (RRCLOUD_MDNS unset), no caller's settings. */
const insideEnv = (home: string): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: home, LANG: 'C.UTF-8', RRCLOUD_INTERFACE: 'veth0', NO_COLOR: '1' })

const q = (xs: number[], p: number): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))] }
const med = (xs: number[]): number => q(xs, 0.5)

function startCounter (lan: Lan, host: LanHost, seconds: number, home: string): { go: () => Promise<Count> } {
  const child = lan.spawn(host, [process.execPath, '--import', 'tsx', join(root, 'bench', 'lan-big.ts'), '--worker', 'count', '--address', host.address, '--window', String(seconds)],
    { cwd: root, env: insideEnv(home) })
  const out = lines<{ event: string, count?: Count }>(child)
  return {
    go: async () => {
      await out.wait((l) => l.event === 'ready', 30_000, 'counter ready')
      child.stdin!.write('go\n')
      const r = await out.wait((l) => l.event === 'count', (seconds + 30) * 1000, 'count')
      return r.count!
    },
  }
}

interface MdnsWindow { label: string, count: Count, load: string }

function rates (c: Count): { pps: number, bps: number, wire: number } {
  return { pps: c.packets / c.seconds, bps: c.bytes / c.seconds, wire: (c.bytes + WIRE_OVERHEAD * c.packets) / c.seconds }
}

function describe (w: MdnsWindow, groups: Array<{ name: string, addresses: string[] }>, say: (s?: string) => void): void {
  const c = w.count
  const r = rates(c)
  const per = (n: number): string => (n / c.seconds).toFixed(1)
  say(`**${w.label}** (${c.seconds} s; load average ${w.load}): ${c.packets} packets, ${c.bytes} bytes of UDP payload → ` +
    `**${r.pps.toFixed(1)} packets/s, ${Math.round(r.bps)} B/s** (${Math.round(r.wire)} B/s on the wire with Ethernet/IP/UDP headers)`)
  say()
  say('| kind | packets/s | B/s | mean size (B) |')
  say('|---|---|---|---|')
  say(`| queries | ${per(c.queries)} | ${Math.round(c.queryBytes / c.seconds)} | ${c.queries ? Math.round(c.queryBytes / c.queries) : '-'} |`)
  say(`| responses within ${ANSWER_MS} ms of a query (answers) | ${per(c.answers)} | ${Math.round(c.answerBytes / c.seconds)} | ${c.answers ? Math.round(c.answerBytes / c.answers) : '-'} |`)
  say(`| other responses (announcements, TXT updates, goodbyes) | ${per(c.unsolicited)} | ${Math.round(c.unsolicitedBytes / c.seconds)} | ${c.unsolicited ? Math.round(c.unsolicitedBytes / c.unsolicited) : '-'} |`)
  say()
  if (c.queryGapsMs.length) say(`time between one query and the next (any sender), min / p50 / max: ${Math.min(...c.queryGapsMs)} / ${med(c.queryGapsMs)} / ${Math.max(...c.queryGapsMs)} ms; ` +
    `queries sent by ${Object.values(c.bySource).filter((x) => x.queries).length} hosts`)
  if (c.ptrAnswers.length) say(`per \`_rrcloud._tcp\` PTR query: responses within ${ANSWER_MS} ms p50 ${med(c.ptrAnswers.map((x) => x.n))} (min ${Math.min(...c.ptrAnswers.map((x) => x.n))}), the last of them p50 ${med(c.ptrAnswers.map((x) => x.lastMs))} ms after the query`)
  say()
  say(`answers per query ${c.queries ? (c.answers / c.queries).toFixed(1) : '-'}; queries carrying known answers ${c.queriesWithKnown} of ${c.queries} (${c.knownAnswers} known answers in all); ` +
    `questions: ${Object.entries(c.questions).sort((a, b) => b[1] - a[1]).slice(0, 6).map(([k, v]) => `${k} ×${v}`).join(', ') || 'none'}; ` +
    `records in responses: ${Object.entries(c.recordTypes).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}${c.undecoded ? `; ${c.undecoded} undecoded` : ''}`)
  say()
  if (groups.length) {
    say('| senders | hosts | packets/s per host | queries/s per host | answers/s per host | other responses/s per host | B/s per host |')
    say('|---|---|---|---|---|---|---|')
    for (const g of groups) {
      const ss = g.addresses.map((a) => c.bySource[a]).filter(Boolean)
      const n = g.addresses.length
      const sum = (k: keyof SourceCount): number => ss.reduce((t, s) => t + s[k], 0)
      const f = (k: keyof SourceCount): string => (sum(k) / n / c.seconds).toFixed(2)
      say(`| ${g.name} | ${n} (${ss.length} sent) | ${f('packets')} | ${f('queries')} | ${f('answers')} | ${f('unsolicited')} | ${Math.round(sum('bytes') / n / c.seconds)} |`)
    }
    const known = new Set(groups.flatMap((g) => g.addresses))
    const others = Object.entries(c.bySource).filter(([a]) => !known.has(a))
    if (others.length) say(`| others (${others.map(([a]) => a).join(', ')}) | ${others.length} | ${(others.reduce((t, [, s]) => t + s.packets, 0) / c.seconds).toFixed(2)} in all | | | | |`)
    say()
  }
}

async function startNodes (nl: NodeLan, say: (s?: string) => void): Promise<LanNode[]> {
  const started = Date.now()
  // a few at a time: 30 node processes loading at once on 2 busy cores would miss the helper's 20 s
  const nodes: LanNode[] = []
  const BATCH = 5
  for (let i = 0; i < NODES; i += BATCH) {
    nodes.push(...await Promise.all(range(Math.min(BATCH, NODES - i)).map((k) => {
      const j = i + k
      return nl.startNode(nl.hosts[j], { name: `n${j + 1}`, slots: 1, testServices: false, hostname: `rrt-n${j + 1}`, serviceDirs: [BENCH_SERVICES], args: ['--sandbox', 'none'] })
    })))
  }
  say(`${NODES} nodes started in ${((Date.now() - started) / 1000).toFixed(1)} s (load average ${la()})`)
  return nodes
}

async function listing (nl: NodeLan, nodes: LanNode[], say: (s?: string) => void): Promise<{ counts: number[], ms: number[] }> {
  const ids = new Set(nodes.map((n) => n.id))
  const counts: number[] = []
  const ms: number[] = []
  say('| run | listed | wall time (ms) | load average before |')
  say('|---|---|---|---|')
  for (let i = 0; i < Number(o.listing); i++) {
    const load = la()
    const r = await nl.rrcloud(['peers', '--json'], { timeoutMs: 20_000 })
    let listed = -1
    try { listed = (JSON.parse(r.stdout) as Array<{ id: string }>).filter((p) => ids.has(p.id)).length } catch {}
    counts.push(listed)
    ms.push(r.ms)
    say(`| ${i + 1} | ${listed < 0 ? `failed (exit ${r.code ?? r.signal}: ${r.stderr.slice(0, 200).replace(/\s+/g, ' ')})` : listed} | ${r.ms} | ${load} |`)
    await sleep(1000)
  }
  say()
  say(`listed all ${NODES} in ${counts.filter((c) => c === NODES).length} of ${counts.length} runs (min ${Math.min(...counts)}); wall time min / p50 / max ${Math.min(...ms)} / ${med(ms)} / ${Math.max(...ms)} ms`)
  return { counts, ms }
}

function spreadTrial (nl: NodeLan, nodes: LanNode[]): Promise<SpreadResult> {
  const child = nl.lan.spawn(nl.client, [process.execPath, '--import', 'tsx', join(root, 'bench', 'lan-big.ts'), '--worker', 'spread',
    '--urls', nodes.map((n) => n.url).join(','), '--tasks', String(TASKS)], { cwd: root, env: insideEnv(nl.dir) })
  let err = ''
  child.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise<never>((resolve, reject) => child.once('close', (code) => reject(new Error(`spread worker exited ${code}: ${err.slice(-1500)}`))))
  return Promise.race([lines<{ event: string, result: SpreadResult }>(child).wait((l) => l.event === 'spread', 300_000, 'spread worker').then((l) => l.result), exited])
}

async function nodeParts (say: (s?: string) => void, summary: Record<string, unknown>): Promise<void> {
  const nl = await createNodeLan(NODES, 1)
  closers.add(nl.close)
  try {
    say(`LAN: bridge namespace + ${NODES} node hosts + 1 client host (${nl.lan.bridgeNs.replace(/-br$/, '')}-*)`)
    const nodes = await startNodes(nl, say)
    // the client sees every node (a one-shot look: no node is made to browse, and the windows start
    // after the nodes' idle minute would be over anyway)
    const ids = new Set(nodes.map((n) => n.id))
    await until(async () => {
      const r = await nl.rrcloud(['peers', '--json'], { timeoutMs: 20_000 })
      try { return (JSON.parse(r.stdout) as Array<{ id: string }>).filter((p) => ids.has(p.id)).length === NODES } catch { return false }
    }, 60_000, 'the client to see every node', 1000)
    await sleep(3000)
    const addresses = nodes.map((n) => n.host.address)

    if (PARTS.has('listing')) {
      say()
      say(`## 1. Listing: a fresh \`rrcloud peers --json\` in the client namespace, ${o.listing} runs, 1 s apart`)
      say()
      summary.listing = await listing(nl, nodes, say)
    }

    if (PARTS.has('traffic')) {
      say()
      say(`## 2a. mDNS traffic with ${NODES} rrcloud nodes`)
      say()
      const idle = await startCounter(nl.lan, nl.client, WINDOW_S, nl.dir).go()
      const wIdle: MdnsWindow = { label: `${NODES} nodes, all idle`, count: idle, load: la() }
      describe(wIdle, [{ name: 'nodes', addresses }], say)
      summary.idle = wIdle
      // TXT strings a node published, for the avahi services
      summary.txt = idle.txt
      const loaded = nodes.slice(0, LOADED)
      const load = nl.lan.spawn(nl.client, [process.execPath, '--import', 'tsx', join(root, 'bench', 'lan-big.ts'), '--worker', 'load', '--urls', loaded.map((n) => n.url).join(',')],
        { cwd: root, env: insideEnv(nl.dir) })
      const loadOut = lines<{ event: string, sent?: number, failed?: number }>(load)
      try {
        await loadOut.wait((l) => l.event === 'ready', 30_000, 'loader ready')
        await sleep(4000)
        const before = loadOut.all.filter((l) => l.event === 'load').at(-1)
        const busy = await startCounter(nl.lan, nl.client, WINDOW_S, nl.dir).go()
        const after = loadOut.all.filter((l) => l.event === 'load').at(-1)
        const wBusy: MdnsWindow = { label: `${NODES} nodes, ${LOADED} of them given a one-second \`nap\` task every ~1.2 s`, count: busy, load: la() }
        say()
        describe(wBusy, [{ name: `loaded nodes (n1–n${LOADED})`, addresses: addresses.slice(0, LOADED) }, { name: `idle nodes (n${LOADED + 1}–n${NODES})`, addresses: addresses.slice(LOADED) }], say)
        say(`tasks accepted by the loaded nodes during the run of the loader: ${after?.sent ?? '?'} (${after?.failed ?? '?'} refused or failed); ` +
          `about ${before && after ? ((after.sent! - before.sent!) / (WINDOW_S + 2)).toFixed(1) : '?'} per second around the window`)
        summary.busy = wBusy

        // one live view of the LAN: n1's events stream subscribed to peers (a dashboard open on it)
        const view = nl.lan.spawn(nl.client, ['curl', '-sN', `${nodes[0].url}/api/v1/events?events=peer`], { cwd: root })
        let peerEvents = 0
        view.stdout!.on('data', (d: Buffer) => { peerEvents += (d.toString().match(/^event: peer$/gm) ?? []).length })
        try {
          await sleep(10_000)
          const viewed = await startCounter(nl.lan, nl.client, WINDOW_S, nl.dir).go()
          const wViewed: MdnsWindow = { label: `${NODES} nodes, ${LOADED} of them loaded as above, n1's events stream followed by one client (n1 browses)`, count: viewed, load: la() }
          say()
          describe(wViewed, [{ name: 'n1 (browsing)', addresses: addresses.slice(0, 1) }, { name: `other loaded nodes (n2–n${LOADED})`, addresses: addresses.slice(1, LOADED) }, { name: `idle nodes (n${LOADED + 1}–n${NODES})`, addresses: addresses.slice(LOADED) }], say)
          summary.busyViewed = wViewed
          load.kill('SIGKILL')
          await sleep(5000)
          const idleViewed = await startCounter(nl.lan, nl.client, WINDOW_S, nl.dir).go()
          const wIdleViewed: MdnsWindow = { label: `${NODES} nodes, all idle, n1's events stream followed by one client (n1 browses)`, count: idleViewed, load: la() }
          say()
          describe(wIdleViewed, [{ name: 'n1 (browsing)', addresses: addresses.slice(0, 1) }, { name: `other nodes (n2–n${NODES})`, addresses: addresses.slice(1) }], say)
          say(`peer events the client got from n1 over both windows and the waits: ${peerEvents}`)
          summary.idleViewed = wIdleViewed
        } finally {
          view.kill('SIGKILL')
        }
      } finally {
        load.kill('SIGKILL')
      }
      await sleep(3000)
    }

    if (PARTS.has('spread')) {
      say()
      say(`## 3. Spreading: ${TASKS} one-second \`nap\` tasks at once from one process (src/client/lan.ts) over ${NODES} one-slot nodes; ideal ${Math.ceil(TASKS / NODES)} s`)
      say()
      say('| trial | makespan (ms) | × ideal | all submitted (ms) | first look (ms) | last accepted (ms) | tasks per node (min–max) | nodes used | load average before |')
      say('|---|---|---|---|---|---|---|---|---|')
      const spans: number[] = []
      const ideal = Math.ceil(TASKS / NODES) * 1000
      for (let t = 0; t < Number(o.trials); t++) {
        const load = la()
        try {
          const r = await spreadTrial(nl, nodes)
          spans.push(r.makespanMs)
          const per = Object.values(r.perNode)
          say(`| ${t + 1} | ${r.makespanMs} | ${(r.makespanMs / ideal).toFixed(2)} | ${r.submittedMs} | ${r.lookMs ?? ''} | ${r.acceptedMs} | ${Math.min(...per)}–${Math.max(...per)} | ${per.length} | ${load} |` +
            (r.failed ? ` ${r.failed} failed` : '') + (r.cached ? ` ${r.cached} from the result cache` : ''))
          if (r.phases) say(`|  | per task median/max (ms): accepted → started ${r.phases.firstStart.join('/')}, slot freed → next started ${r.phases.nextStart.join('/')}, run ${r.phases.run.join('/')}; code loaded beforehand in ${r.loadMs} ms | | | | | | | |`)
        } catch (e) { say(`| ${t + 1} | failed: ${(e as Error).message.replace(/\s+/g, ' ').slice(0, 500)} | | | | | | | |`) }
        await sleep(3000)
      }
      say()
      if (spans.length) say(`makespan median ${med(spans)} ms = **${(med(spans) / ideal).toFixed(2)}× ideal** (${spans.join(', ')} ms)`)
      summary.spread = { spans, ideal }
    }
  } finally {
    await nl.close()
    closers.delete(nl.close)
  }
}

/**
 * startAvahi of test/helpers/avahi.ts, with a folder of static service files mounted on
 * /etc/avahi/services inside the private mount namespace (the host's folder is never touched),
 * and `avahi-browse` startable inside.
 */
async function startAvahiWith (lan: Lan, host: LanHost, serviceXml: string): Promise<{ browse: (args: string[]) => void, close: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'rrt-avahi-'))
  mkdirSync(join(dir, 'services'))
  writeFileSync(join(dir, 'services', 'rrcloud.service'), serviceXml)
  writeFileSync(join(dir, 'dbus.conf'), `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/><allow own="*"/><allow send_destination="*"/><allow receive_sender="*"/>
  </policy>
</busconfig>
`)
  writeFileSync(join(dir, 'avahi-daemon.conf'), `[server]
host-name=avahi-${host.ns.split('-').at(-1)}
use-ipv4=yes
use-ipv6=no
allow-interfaces=${host.ifname}
ratelimit-interval-usec=1000000
ratelimit-burst=1000
[wide-area]
enable-wide-area=no
[publish]
publish-addresses=yes
publish-hinfo=no
publish-workstation=no
`)
  const holder = lan.spawn(host, ['unshare', '--mount', '--propagation', 'private', 'sleep', 'infinity'], { stdio: 'ignore' })
  const pid = holder.pid
  if (!pid) throw new Error('could not start the mount namespace holder')
  const inside = (argv: string[]) => lan.track(spawn('nsenter', ['-t', String(pid), '-m', '-n', '--', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] }))
  const runInside = (argv: string[]): Promise<void> => new Promise((resolve, reject) => {
    const c = inside(argv)
    let err = ''
    c.stderr?.on('data', (d: Buffer) => { err += d.toString() })
    c.once('exit', (code) => code === 0 ? resolve() : reject(new Error(`${argv.join(' ')}: exit ${code} ${err}`)))
  })
  const daemons: Array<ReturnType<typeof inside>> = []
  const cleanup = async (): Promise<void> => {
    for (const d of daemons) d.kill('SIGKILL')
    holder.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    for (let i = 0; ; i++) {
      let comm = ''
      let ns = ''
      try {
        comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim()
        ns = readlinkSync(`/proc/${pid}/ns/mnt`)
      } catch {}
      if (comm === 'sleep' && ns && ns !== readlinkSync('/proc/self/ns/mnt')) break
      if (i > 200) throw new Error('the mount namespace holder did not start')
      await sleep(20)
    }
    await runInside(['mount', '-t', 'tmpfs', 'tmpfs', '/run'])
    await runInside(['mkdir', '-p', '/run/dbus', '/run/avahi-daemon'])
    await runInside(['mount', '--bind', join(dir, 'services'), '/etc/avahi/services'])
    daemons.push(inside(['dbus-daemon', '--nofork', '--nopidfile', `--config-file=${join(dir, 'dbus.conf')}`]))
    for (let i = 0; i < 200; i++) {
      try { await runInside(['test', '-S', '/run/dbus/system_bus_socket']); break } catch { await sleep(50) }
    }
    const avahi = inside(['avahi-daemon', '--no-drop-root', '--no-chroot', '--no-rlimits', '--no-proc-title', '-f', join(dir, 'avahi-daemon.conf')])
    daemons.push(avahi)
    const log = lines(avahi, (s) => s, 'stderr')
    await log.wait((s) => /Server startup complete/.test(s), 30_000, 'avahi-daemon startup')
    await log.wait((s) => /Service ".*" \(.*rrcloud.service\) successfully established/.test(s), 30_000, 'static service established')
    return {
      browse: (args) => { daemons.push(inside(['avahi-browse', ...args])) },
      async close () {
        for (const d of daemons) d.kill('SIGTERM')
        await sleep(100)
        await cleanup()
      },
    }
  } catch (e) {
    await cleanup()
    throw e
  }
}

const xml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

async function avahiPart (say: (s?: string) => void, summary: Record<string, unknown>): Promise<void> {
  const lan = await createLan(AVAHI + 1)
  const hosts = lan.hosts.slice(0, AVAHI)
  const client = lan.hosts[AVAHI]
  const home = mkdtempSync(join(tmpdir(), 'rrt-lanbig-'))
  const daemons: Array<{ browse: (args: string[]) => void, close: () => Promise<void> }> = []
  const closeAll = async (): Promise<void> => {
    await Promise.all(daemons.map((d) => d.close().catch(() => {})))
    await lan.close()
    rmSync(home, { recursive: true, force: true })
  }
  closers.add(closeAll)
  const txt = (summary.txt as string[] | undefined) ?? ['v=1', 'id=0000000000000000', 'name=n1', 'services=nap', 'load=0.50', 'cores=2', 'slots=1', 'free=1', 'queue=0']
  try {
    say()
    say(`## 2b. mDNS traffic with ${AVAHI} avahi-daemons, one static \`_rrcloud._tcp\` service each, no rrcloud process (a LAN of its own)`)
    say()
    say(`TXT of each service (as a node published it): \`${txt.join(' ')}\` (the id and name made distinct per daemon)`)
    say()
    const started = Date.now()
    const BATCH = 6
    for (let i = 0; i < AVAHI; i += BATCH) {
      daemons.push(...await Promise.all(range(Math.min(BATCH, AVAHI - i)).map((k) => {
        const j = i + k
        const id = (j + 1).toString(16).padStart(16, 'a')
        const strings = txt.map((s) => s.startsWith('id=') ? `id=${id}` : s.startsWith('name=') ? `name=a${j + 1}` : s)
        const service = `<?xml version="1.0" standalone='no'?>
<!DOCTYPE service-group SYSTEM "avahi-service.dtd">
<service-group>
  <name>a${j + 1}-${id.slice(0, 6)}</name>
  <service>
    <type>_rrcloud._tcp</type>
    <port>4468</port>
${strings.map((s) => `    <txt-record>${xml(s)}</txt-record>`).join('\n')}
  </service>
</service-group>
`
        return startAvahiWith(lan, hosts[j], service)
      })))
    }
    say(`${AVAHI} avahi-daemons (each with its dbus-daemon) started and their services established in ${((Date.now() - started) / 1000).toFixed(1)} s (load average ${la()}); the window starts 10 s later`)
    say()
    await sleep(10_000)
    const alone = await startCounter(lan, client, WINDOW_S, home).go()
    const wAlone: MdnsWindow = { label: `${AVAHI} avahi-daemons publishing, nobody browsing`, count: alone, load: la() }
    describe(wAlone, [{ name: 'avahi hosts', addresses: hosts.map((h) => h.address) }], say)
    summary.avahi = wAlone
    daemons[0].browse(['-r', '-p', '_rrcloud._tcp'])
    say('then `avahi-browse -r -p _rrcloud._tcp` started against the first daemon only (one host browses and resolves every service); the window starts 10 s later')
    say()
    await sleep(10_000)
    const one = await startCounter(lan, client, WINDOW_S, home).go()
    const wOne: MdnsWindow = { label: `${AVAHI} avahi-daemons publishing, one of them browsing \`_rrcloud._tcp\``, count: one, load: la() }
    describe(wOne, [{ name: 'the browsing host', addresses: hosts.slice(0, 1).map((h) => h.address) }, { name: 'other avahi hosts', addresses: hosts.slice(1).map((h) => h.address) }], say)
    summary.avahiOne = wOne
    for (const d of daemons.slice(1)) d.browse(['-r', '-p', '_rrcloud._tcp'])
    say('then against every other daemon too (each host browses and resolves every service, as each rrcloud node browses its peers); the window starts 10 s later')
    say()
    await sleep(10_000)
    const browsing = await startCounter(lan, client, WINDOW_S, home).go()
    const wBrowsing: MdnsWindow = { label: `${AVAHI} avahi-daemons publishing, each browsing \`_rrcloud._tcp\``, count: browsing, load: la() }
    describe(wBrowsing, [{ name: 'avahi hosts', addresses: hosts.map((h) => h.address) }], say)
    summary.avahiBrowsing = wBrowsing
  } finally {
    await closeAll()
    closers.delete(closeAll)
  }
}

async function orchestrate (): Promise<void> {
  if (!canUseNetns()) {
    console.error('needs root and iproute2: the benchmark runs in network namespaces')
    process.exit(1)
  }
  const out: string[] = []
  const say = (s = ''): void => { out.push(s); console.error(s) }
  const summary: Record<string, unknown> = {}
  const began = Date.now()
  say(`load average at start ${la()}`)
  say()
  try {
    if (['listing', 'traffic', 'spread'].some((p) => PARTS.has(p))) await nodeParts(say, summary)
    if (PARTS.has('avahi')) await avahiPart(say, summary)
  } finally {
    say()
    say('## Summary')
    say()
    const l = summary.listing as { counts: number[], ms: number[] } | undefined
    if (l) say(`- listing: all ${NODES} listed in ${l.counts.filter((c) => c === NODES).length}/${l.counts.length} runs; wall time min / p50 / max ${Math.min(...l.ms)} / ${med(l.ms)} / ${Math.max(...l.ms)} ms (goal: all listed, p50 ≤ 1500)`)
    const w = (k: string): MdnsWindow | undefined => summary[k] as MdnsWindow | undefined
    for (const k of ['idle', 'busy', 'busyViewed', 'idleViewed', 'avahi', 'avahiOne', 'avahiBrowsing']) {
      const x = w(k)
      if (x) { const r = rates(x.count); say(`- ${x.label}: ${r.pps.toFixed(1)} packets/s, ${Math.round(r.bps)} B/s payload (${Math.round(r.wire)} B/s on the wire)`) }
    }
    const ratio = (x: number, y: number): string => y > 0 ? `${(x / y).toFixed(1)}×` : x > 0 ? '∞ (baseline sent nothing)' : 'both sent nothing'
    for (const [ours, theirs, what] of [['busy', 'avahi', 'loaded, nobody browsing'], ['busy', 'avahiBrowsing', 'loaded, nobody browsing'], ['busyViewed', 'avahiOne', 'loaded, one browsing'], ['idleViewed', 'avahiOne', 'idle, one browsing']]) {
      const b = w(ours)
      const a = w(theirs)
      if (b && a) {
        const rb = rates(b.count)
        const ra = rates(a.count)
        say(`- ratio rrcloud (${what}) / ${a.label}: packets ${ratio(rb.pps, ra.pps)}, bytes ${ratio(rb.bps, ra.bps)} (goal ≤ 2×)`)
      }
    }
    const s = summary.spread as { spans: number[], ideal: number } | undefined
    if (s?.spans.length) say(`- spreading: makespan median ${med(s.spans)} ms over ${s.spans.length} trials = ${(med(s.spans) / s.ideal).toFixed(2)}× ideal ${s.ideal} ms (goal ≤ 1.15×)`)
    say(`- load average at the end ${la()}; ${((Date.now() - began) / 1000).toFixed(0)} s in all`)
  }
  process.stdout.write(out.join('\n') + '\n')
}

// a run stopped with ^C or SIGTERM still stops what it started and deletes its namespaces
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    void Promise.race([Promise.all([...closers].map((c) => c().catch(() => {}))), sleep(8000)]).then(() => process.exit(130))
  })
}

if (o.worker === 'count') await counter(o.address!, WINDOW_S)
else if (o.worker === 'load') await loader(o.urls!.split(','))
else if (o.worker === 'spread') await spreader(o.urls!.split(','), TASKS)
else if (o.worker) throw new Error(`unknown worker ${o.worker}`)
else await orchestrate()
process.exit(0)
