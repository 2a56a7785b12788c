// A LAN of real `rrcloud node` processes (built bin/run.js), one per network namespace of a
// netns LAN (see netns.ts), and client commands run in a namespace of their own. The test process
// stays in the host's namespace: it reaches the nodes only through processes started inside the LAN
// (curl, the client), so nothing it does can touch the host's interfaces.
import { execFile, execFileSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { createLan, lines, type Lan, type LanHost, type Lines } from './netns.js'

export const root = fileURLToPath(new URL('../..', import.meta.url))
export const BIN = join(root, 'bin', 'run.js')
export const TEST_SERVICES = join(root, 'test', 'fixtures', 'services')
export const NODE_PORT = 4468

export interface NodeOptions {
  name: string, slots?: number, token?: string
  /** add test/fixtures/services (the `slow` service); default true */
  testServices?: boolean
  /** more folders of service descriptors (`--services`), e.g. bench/services */
  serviceDirs?: string[]
  /** `NAME=/dev/PATH[@BAUD]` */
  printers?: string[]
  /** advertise and browse over mDNS (default true) */
  mdns?: boolean
  /** a host name of its own (a UTS namespace); by default every node has this machine's */
  hostname?: string
  args?: string[]
}

export interface LanNode {
  name: string, host: LanHost, url: string, dataDir: string, child: ChildProcess
  /** its stdout lines */
  out: Lines<string>
  /** node id (from its data folder); mDNS instance name, e.g. `alpha-3fa9c1` ('' with mdns: false) */
  id: string, instance: string
  /** ms since the epoch: process started, listening (its log line), announced on mDNS */
  spawnedAt: number, listeningAt: number, advertisedAt: number
  running (): boolean
  /** sends a signal and waits until the process is gone (SIGKILL after 5 s) */
  stop (signal?: NodeJS.Signals): Promise<void>
}

export interface Ran { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }
/** `bin`: the program under bin/ (default run.js: `rrcloud`), e.g. `printrun.cloud` */
export interface RunOptions { host?: LanHost, env?: Record<string, string>, cwd?: string, timeoutMs?: number, bin?: string }
export interface HttpReply { status: number; body: any; text: string }

export interface NodeLan {
  /** `hosts`: for nodes (in order), then the client hosts; `dir`: a scratch folder removed by close() */
  lan: Lan, hosts: LanHost[], client: LanHost, nodes: LanNode[], dir: string
  startNode (host: LanHost, o: NodeOptions): Promise<LanNode>
  /** runs `node bin/run.js ARGV` (or another bin) in the client namespace, no shell */
  rrcloud (argv: string[], o?: RunOptions): Promise<Ran>
  /** the same, left running (for --watch); killed by close() */
  spawnClient (argv: string[], o?: RunOptions): ChildProcess
  /** an HTTP request made with curl from the client namespace */
  http (url: string, o?: { method?: string, form?: Record<string, string>, files?: Record<string, string>, headers?: Record<string, string>, host?: LanHost }): Promise<HttpReply>
  /** writes an input file for the `slow` service (its content: seconds to sleep) and returns its path */
  slowInput (seconds: number): string
  /** posts a `slow` task (sleeps `seconds`) straight to a node */
  submitSlow (node: LanNode, seconds: number, headers?: Record<string, string>): Promise<HttpReply>
  close (): Promise<void>
}

/** Environment for client commands: no rrcloudrc, token or debug output from the caller's. */
const clientEnv = (home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv =>
  ({ PATH: process.env.PATH, HOME: home, LANG: 'C.UTF-8', RRCLOUD_INTERFACE: 'veth0', NO_COLOR: '1', ...extra })

/** Kills what is still running inside the namespaces (orphaned task processes of a killed node). */
function killInside (namespaces: string[]): void {
  for (const ns of namespaces) {
    let pids = ''
    try { pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }) } catch { continue }
    for (const pid of pids.split('\n').filter(Boolean).map(Number)) {
      if (pid === process.pid) continue
      try { process.kill(pid, 'SIGKILL') } catch {}
    }
  }
}

// a test runner that exits without close(): kill what runs in our namespaces before netns.ts's own
// exit handler deletes them (prepended, so it runs first)
const open = new Map<string[], string>()
process.prependListener('exit', () => {
  for (const [nss, dir] of open) {
    killInside(nss)
    rmSync(dir, { recursive: true, force: true })
  }
})

/** A netns LAN with `nodeHosts` hosts for nodes and `clientHosts` more for clients (the first is `client`). */
export async function createNodeLan (nodeHosts: number, clientHosts = 1): Promise<NodeLan> {
  const lan = await createLan(nodeHosts + clientHosts)
  const dir = mkdtempSync(join(tmpdir(), 'rrt-lan-'))
  const home = join(dir, 'home')
  mkdirSync(home)
  const client = lan.hosts[nodeHosts]
  const nodes: LanNode[] = []
  let closed: Promise<void> | undefined
  const namespaces = lan.hosts.map((h) => h.ns)
  open.set(namespaces, dir)

  const spawnClient = (argv: string[], o: RunOptions = {}): ChildProcess =>
    lan.spawn(o.host ?? client, [process.execPath, join(root, 'bin', o.bin ?? 'run.js'), ...argv], {
      cwd: o.cwd ?? home, env: clientEnv(home, o.env), stdio: ['ignore', 'pipe', 'pipe'],
    })

  const rrcloud = (argv: string[], o: RunOptions = {}): Promise<Ran> => new Promise((resolve) => {
    const started = Date.now()
    const child = spawnClient(argv, o)
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 30_000)
    child.once('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr, ms: Date.now() - started }) })
  })

  const http: NodeLan['http'] = (url, o = {}) => new Promise((resolve, reject) => {
    const args = ['-sS', '--max-time', '10', '-w', '\n%{http_code}', '-H', 'accept: application/json']
    if (o.method) args.push('-X', o.method)
    for (const [k, v] of Object.entries(o.headers ?? {})) args.push('-H', `${k}: ${v}`)
    // --form-string: values are never read as @file or <file
    for (const [k, v] of Object.entries(o.form ?? {})) args.push('--form-string', `${k}=${v}`)
    for (const [k, path] of Object.entries(o.files ?? {})) args.push('-F', `${k}=@${path}`)
    execFile('ip', ['netns', 'exec', (o.host ?? client).ns, 'curl', ...args, url], { encoding: 'utf8', timeout: 15_000 }, (err, stdout, stderr) => {
      if (err) { reject(new Error(`curl ${url}: ${err.message} ${stderr}`)); return }
      const cut = stdout.lastIndexOf('\n')
      const text = stdout.slice(0, cut)
      let body: any = text
      try { body = JSON.parse(text) } catch {}
      resolve({ status: Number(stdout.slice(cut + 1)), body, text })
    })
  })

  let inputs = 0
  const slowInput = (seconds: number): string => {
    const file = join(dir, `in-${++inputs}.txt`)
    writeFileSync(file, `${seconds}\n`)
    return file
  }
  const submitSlow: NodeLan['submitSlow'] = (node, seconds, headers) =>
    http(`${node.url}/api/v1/tasks`, { method: 'POST', form: { service: 'slow' }, files: { fileIn0: slowInput(seconds) }, headers })

  const startNode: NodeLan['startNode'] = async (host, o) => {
    const dataDir = join(dir, `node-${o.name}`)
    mkdirSync(dataDir, { recursive: true })
    const argv = [process.execPath, BIN, 'node', `--port=${NODE_PORT}`, `--interface=${host.ifname}`, `--data-dir=${dataDir}`,
      `--name=${o.name}`, `--slots=${o.slots ?? 1}`]
    if (o.testServices !== false) argv.push(`--services=${TEST_SERVICES}`)
    for (const d of o.serviceDirs ?? []) argv.push(`--services=${d}`)
    for (const p of o.printers ?? []) argv.push(`--printer=${p}`)
    if (o.token) argv.push(`--token=${o.token}`)
    if (o.mdns === false) argv.push('--no-mdns')
    argv.push(...o.args ?? [])
    // the name is passed as an argument, never put into the script
    if (o.hostname) argv.unshift('unshare', '--uts', '--', 'sh', '-c', 'hostname "$1" && shift && exec "$@"', 'sh', o.hostname)
    const spawnedAt = Date.now()
    const child = lan.spawn(host, argv, { cwd: root, env: { PATH: process.env.PATH, HOME: home, LANG: 'C.UTF-8' }, stdio: ['ignore', 'pipe', 'pipe'] })
    const out = lines<string>(child, (s) => s)
    const err: string[] = []
    child.stderr!.on('data', (d: Buffer) => err.push(d.toString()))
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    const failed = gone.then(() => { throw new Error(`node ${o.name} exited (${child.exitCode ?? child.signalCode}): ${err.join('').slice(-2000)}\n${out.all.join('\n')}`) })
    const waitLine = (re: RegExp, what: string) =>
      Promise.race([out.wait((l) => re.test(l), 20_000, `${o.name}: ${what}`), failed]).then(() => Date.now())
    const listeningAt = await waitLine(/rrcloud node listening on/, 'listening')
    const advertisedAt = o.mdns === false ? listeningAt : await waitLine(/mdns: advertising /, 'advertised')
    const instance = o.mdns === false ? '' : /mdns: advertising (\S+)/.exec(out.all.find((l) => /mdns: advertising /.test(l))!)![1]
    const node: LanNode = {
      name: o.name, host, url: `http://${host.address}:${NODE_PORT}`, dataDir, child, out,
      id: readFileSync(join(dataDir, 'node-id'), 'utf8').trim(), instance, spawnedAt, listeningAt, advertisedAt,
      running: () => child.exitCode === null && child.signalCode === null,
      async stop (signal = 'SIGTERM') {
        if (!node.running()) return
        child.kill(signal)
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
        await gone
        clearTimeout(timer)
      },
    }
    nodes.push(node)
    return node
  }

  return {
    lan, hosts: lan.hosts, client, nodes, dir, startNode, rrcloud, spawnClient, http, slowInput, submitSlow,
    close () {
      closed ??= (async () => {
        await Promise.all(nodes.map((n) => n.stop('SIGKILL')))
        killInside(namespaces)
        await sleep(50)
        await lan.close()
        open.delete(namespaces)
        rmSync(dir, { recursive: true, force: true })
      })()
      return closed
    },
  }
}

/** Polls until fn returns a truthy value; fails after timeoutMs saying what it waited for. */
type Falsy = undefined | null | false | 0 | ''
export async function until<T> (fn: () => Promise<T | Falsy> | T | Falsy, timeoutMs: number, what: string, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v) return v as T
    } catch (e) { last = e }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`)
    await sleep(everyMs)
  }
}

/** Waits until `watcher` sees `n` with `free` free slots: what a client's fresh look will see too. */
export async function seenFree (nl: NodeLan, watcher: LanNode, n: LanNode, free: number, timeoutMs = 8000): Promise<void> {
  await until(async () => {
    const r = await nl.http(`${watcher.url}/api/v1/peers`)
    return (r.body as any[]).find((x) => x.record.id === n.id)?.record.free === free
  }, timeoutMs, `${n.name} to be seen with ${free} free`)
}

/** Which node holds task `id` (asked over HTTP), or undefined. */
export async function nodeOfTask (nl: NodeLan, id: string, among: LanNode[] = nl.nodes): Promise<LanNode | undefined> {
  for (const n of among) {
    if (!n.running()) continue
    const r = await nl.http(`${n.url}/api/v1/tasks/${id}`).catch(() => undefined)
    if (r?.status === 200) return n
  }
  return undefined
}

/** The task id an asynchronous `rrcloud SERVICE ...` printed (`id: ID`); fails with its output otherwise. */
export function printedId (r: Ran): string {
  const m = /^id: (\S+)$/m.exec(r.stdout)
  if (r.code !== 0 || !m) throw new Error(`expected "id: ID" and exit 0, got exit ${r.code}: ${r.stdout} ${r.stderr}`)
  return m[1]
}

/** Ids of the tasks a node holds (GET /api/v1/tasks), optionally only those with a status. */
export async function tasksOn (nl: NodeLan, n: LanNode, status?: string): Promise<string[]> {
  const r = await nl.http(`${n.url}/api/v1/tasks`)
  if (r.status !== 200) throw new Error(`${n.name}: /api/v1/tasks answered ${r.status}: ${r.text}`)
  return (r.body as Array<{ id: string, status: string }>).filter((t) => !status || t.status === status).map((t) => t.id)
}

export interface Placed { id: string, url: string }

/**
 * Run inside the LAN (a process in a client namespace): submits n tasks at once from this one
 * process, asking the LAN source of src/client/lan.ts for candidates before each. `beforeSubmit`
 * runs once the first candidates are known and before any upload (to kill a node in between).
 */
export async function submitThroughLan (n: number, service: string, file: string, o: { token?: string, beforeSubmit?: (urls: string[]) => Promise<void> } = {}): Promise<Placed[]> {
  const lan = await import('../../src/client/lan.js' as string) as Record<string, unknown>
  const { submit } = await import('../../src/client/submit.js')
  // the factory's name is the client's to choose; any of these will do
  const make = ['lanServers', 'createLanSource', 'lanSource', 'lanServerSource', 'createLanServers'].map((k) => lan[k]).find((f) => typeof f === 'function') as
    ((o: object) => { candidates (s?: string): Promise<Array<{ url: string, name: string }>>, close? (): Promise<void> | void }) | undefined
  if (!make) throw new Error(`src/client/lan.ts exports ${Object.keys(lan).join(', ')}: no LAN source factory found`)
  const source = make({ interface: 'veth0' })
  try {
    const jobs: Array<Promise<Placed>> = []
    for (let i = 0; i < n; i++) {
      const candidates = await source.candidates(service)
      if (i === 0) await o.beforeSubmit?.(candidates.map((c) => c.url))
      jobs.push(submit(candidates as Parameters<typeof submit>[0], o.token, { service, inputs: [{ path: file }] })
        .then(({ api, task }) => ({ id: task.id, url: api.server.url })))
    }
    return await Promise.all(jobs)
  } finally {
    await source.close?.()
  }
}

/**
 * Starts submitThroughLan in the client namespace. With `pause`, it stops after the first look at
 * the LAN: `candidates` resolves with the URLs it would use, and `go()` lets it submit.
 */
export function lanBatch (nl: NodeLan, n: number, file: string, o: { pause?: boolean, service?: string } = {}): { candidates: Promise<string[]>, go: () => void, placed: Promise<Placed[]> } {
  const script = `import { submitThroughLan } from ${JSON.stringify(join(root, 'test/helpers/lan.ts'))}
import { once } from 'node:events'
const say = (event, data) => process.stdout.write(JSON.stringify({ event, ...data }) + '\\n')
const pause = ${Boolean(o.pause)}
const placed = await submitThroughLan(${n}, ${JSON.stringify(o.service ?? 'slow')}, ${JSON.stringify(file)}, {
  beforeSubmit: async (urls) => { say('candidates', { urls }); if (pause) await once(process.stdin, 'data') },
})
say('placed', { placed })
process.exit(0)`
  const child = nl.lan.spawn(nl.client, [process.execPath, '--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root, env: { PATH: process.env.PATH, HOME: nl.dir, RRCLOUD_INTERFACE: 'veth0' },
  })
  const out = lines<{ event: string, urls?: string[], placed?: Placed[] }>(child)
  let err = ''
  child.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  const failed = new Promise<never>((resolve, reject) => child.once('close', (code, signal) => reject(new Error(`LAN batch exited ${code ?? signal}: ${err.slice(-2000)}`))))
  failed.catch(() => {})
  return {
    candidates: Promise.race([out.wait((l) => l.event === 'candidates', 20_000, 'candidates').then((l) => l.urls!), failed]),
    go: () => child.stdin!.write('go\n'),
    placed: Promise.race([out.wait((l) => l.event === 'placed', 120_000, 'placed').then((l) => l.placed!), failed]),
  }
}
