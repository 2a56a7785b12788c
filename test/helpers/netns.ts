// A private LAN made of Linux network namespaces, so that multicast (mDNS) never touches the
// host's interfaces: one namespace holding a bridge, one namespace per host, a veth pair from each
// host into the bridge. Everything is created with unique names and removed by close(); namespaces
// left behind by a crashed run (its pid gone, older than 10 min) are swept by the next createLan().
// avahi.ts adds a private avahi-daemon to one of the hosts.
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { statSync } from 'node:fs'
import { basename } from 'node:path'
import { after } from 'node:test'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'

export interface LanHost {
  /** namespace name */
  ns: string
  /** the host's interface inside its namespace */
  ifname: string
  address: string
}

export interface Lan {
  bridgeNs: string
  hosts: LanHost[]
  /** starts argv inside a host's namespace (no shell); killed by close() if still running */
  spawn (host: LanHost, argv: string[], opts?: SpawnOptions): ChildProcess
  /** runs argv inside a host's namespace and resolves with its output (rejects on failure) */
  run (host: LanHost, argv: string[]): Promise<string>
  /** keeps a child so that close() kills it (for processes started by other means) */
  track (child: ChildProcess): ChildProcess
  close (): Promise<void>
}

const PREFIX = 'rrt'
let counter = 0

function ip (...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] })
}

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM' }
}

/**
 * Deletes namespaces named by this helper whose creating process no longer exists and that are
 * older than ten minutes (a run in another pid namespace would see a live creator as gone).
 */
export function sweepStale (): void {
  let list = ''
  try { list = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }) } catch { return }
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0]
    const m = new RegExp(`^${PREFIX}(\\d+)-`).exec(name)
    if (!m || alive(Number(m[1]))) continue
    try {
      if (Date.now() - statSync(`/run/netns/${name}`).mtimeMs < 10 * 60_000) continue
      ip('netns', 'del', name)
    } catch {}
  }
}

/** True when this process may create network namespaces (root with iproute2). */
export function canUseNetns (): boolean {
  if (process.getuid?.() !== 0) return false
  try { execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' }); return true } catch { return false }
}

/**
 * The `skip` option of a test that needs network namespaces: false where they can be made; else the
 * reason, and the file's run ends with a diagnostic that counts the tests not run, so that a run
 * without root says in its summary that it did not test the LAN (`{ skip: skip() }`, one call per test).
 */
export function netnsSkip (what: string): () => string | false {
  if (canUseNetns()) return () => false
  const reason = `needs root and iproute2: ${what}`
  let skipped = 0
  after((t) => t.diagnostic(`NOT TESTED: ${skipped} network-namespace test(s) of ${basename(process.argv[1] ?? '')} skipped (${reason})`))
  return () => { skipped++; return reason }
}

// a last resort when close() is never reached (a test runner that exits early)
const live = new Set<string>()
process.once('exit', () => {
  for (const ns of live) {
    try { ip('netns', 'del', ns) } catch {}
  }
})

/** Creates a bridge namespace and `hosts` host namespaces with addresses 10.77.0.2, .3, ... */
export async function createLan (hosts: number): Promise<Lan> {
  sweepStale()
  const id = `${PREFIX}${process.pid}-${++counter}${Math.random().toString(36).slice(2, 6)}`
  const bridgeNs = `${id}-br`
  const created: string[] = []
  const children = new Set<ChildProcess>()
  const lanHosts: LanHost[] = []
  const close = async (): Promise<void> => {
    const waits: Promise<unknown>[] = []
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) {
        waits.push(new Promise((resolve) => c.once('exit', resolve)))
        c.kill('SIGKILL')
      }
    }
    await Promise.race([Promise.all(waits), sleep(3000)])
    children.clear()
    for (const ns of created.splice(0).reverse()) {
      try { ip('netns', 'del', ns) } catch {}
      live.delete(ns)
    }
  }
  try {
    ip('netns', 'add', bridgeNs)
    created.push(bridgeNs)
    live.add(bridgeNs)
    ip('-n', bridgeNs, 'link', 'set', 'lo', 'up')
    // snooping off: without a querier a snooping bridge may stop forwarding group traffic
    ip('-n', bridgeNs, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0')
    ip('-n', bridgeNs, 'link', 'set', 'br0', 'up')
    for (let i = 0; i < hosts; i++) {
      const ns = `${id}-h${i + 1}`
      ip('netns', 'add', ns)
      created.push(ns)
      live.add(ns)
      const port = `p${i + 1}`
      // both ends are created directly inside the namespaces: the host's own netns is never touched
      ip('-n', bridgeNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'veth0', 'netns', ns)
      ip('-n', bridgeNs, 'link', 'set', port, 'master', 'br0', 'up')
      const address = `10.77.0.${i + 2}`
      ip('-n', ns, 'link', 'set', 'lo', 'up')
      ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'veth0')
      ip('-n', ns, 'link', 'set', 'veth0', 'up')
      ip('-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'veth0')
      lanHosts.push({ ns, ifname: 'veth0', address })
    }
  } catch (e) {
    await close()
    throw e
  }
  const track = (child: ChildProcess): ChildProcess => {
    children.add(child)
    child.once('exit', () => children.delete(child))
    return child
  }
  return {
    bridgeNs,
    hosts: lanHosts,
    track,
    spawn: (host, argv, opts = {}) => track(spawn('ip', ['netns', 'exec', host.ns, ...argv], { stdio: ['pipe', 'pipe', 'pipe'], ...opts })),
    run: (host, argv) => new Promise((resolve, reject) => {
      execFile('ip', ['netns', 'exec', host.ns, ...argv], { encoding: 'utf8', timeout: 20000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`${argv.join(' ')}: ${err.message} ${stderr}`))
        else resolve(stdout)
      })
    }),
    close,
  }
}

/** Collects a child's stdout lines and waits for a line matching a predicate. */
export interface Lines<T> {
  all: T[]
  /** resolves with the first line (seen before or after the call) for which `match` is true */
  wait (match: (line: T) => boolean, timeoutMs: number, what?: string): Promise<T>
}

export function lines<T = Record<string, unknown>> (
  child: ChildProcess,
  parse: (s: string) => T | undefined = jsonLine as (s: string) => T | undefined,
  from: 'stdout' | 'stderr' = 'stdout',
): Lines<T> {
  const all: T[] = []
  const waiters = new Set<() => void>()
  const stderr: string[] = []
  if (from === 'stdout') child.stderr?.on('data', (d: Buffer) => { stderr.push(d.toString()) })
  const input = child[from]
  if (input) {
    createInterface({ input }).on('line', (s) => {
      const v = parse(s)
      if (v === undefined) return
      all.push(v)
      for (const w of waiters) w()
    })
  }
  return {
    all,
    wait (match, timeoutMs, what = 'line') {
      return new Promise((resolve, reject) => {
        let from = 0
        const check = (): void => {
          for (; from < all.length; from++) {
            if (match(all[from])) { done(); resolve(all[from]); return }
          }
        }
        const timer = setTimeout(() => {
          done()
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; stderr: ${stderr.join('').slice(-2000)}`))
        }, timeoutMs)
        const done = (): void => { clearTimeout(timer); waiters.delete(check) }
        waiters.add(check)
        check()
      })
    },
  }
}

function jsonLine (s: string): Record<string, unknown> | undefined {
  try { return JSON.parse(s) as Record<string, unknown> } catch { return undefined }
}
