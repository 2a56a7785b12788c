import { fork, spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import debug from 'debug'
import type { SpawnReport, SpawnRequest } from './spawn-helper.js'
import type { RunFolder } from './run-folder.js'

const log = debug('rrcloud:spawner')

export interface SpawnJob {
  exe: string
  args: string[]
  cwd: string
  /** added to the environment, or the whole of it with envOnly */
  env?: Record<string, string>
  /** the tool gets `env` and nothing of the node's environment */
  envOnly?: boolean
  /** stdout and stderr are appended here */
  logFile: string
  /** when set, stdout goes to this file instead of the log */
  stdoutTo?: string
  /** lines of output matching this are reported as progress */
  progress?: RegExp
  /** the first line of output matching this is reported: a file the tool needed could not be opened */
  missing?: RegExp
  /** CPU niceness of the tool (0 to 19; 0 or unset: as the node's) */
  nice?: number
  /** the tool's folder (its cwd): made before it starts, removed (its output kept) once it exits, before its exit is told */
  folder?: RunFolder
}

export interface SpawnEvents {
  /** the tool runs as `pid` (undefined: it could not be started; onExit follows) */
  onPid (pid: number | undefined): void
  onProgress (text: string): void
  onMissing (text: string): void
  /**
   * `error`: the tool could not be started (`folder`: because its folder could not be made);
   * `lost`: it was, but the helper died (the tool was killed)
   */
  onExit (code: number | null, signal: NodeJS.Signals | null, error?: string, lost?: string, folder?: boolean): void
}

interface Pending { events: SpawnEvents; pid?: number; started: boolean }

type Channel = { ref?: () => void; unref?: () => void } | null | undefined

/**
 * The Node.js helper, where there is no perl, is kept small: a young generation of 1 MiB (it holds
 * a few jobs at a time), and V8's lite mode (no optimizing compilers: its own code is little, and
 * what it does is the kernel's). 43 MiB of RSS after 1,000 tools, 36 MiB of it the node binary's
 * pages that the node maps too, against 57 MiB without. A small process is also what makes each
 * fork it does for a tool cheap (fork copies the page tables of what is mapped).
 */
const HELPER_V8 = ['--max-semi-space-size=1', '--lite-mode',
  // V8 before Node 24 says lite mode turns wasm off, unless told so first; Node 24's knows no such flag
  ...(Number(process.versions.node.split('.')[0]) < 24 ? ['--no-expose-wasm'] : [])]

/** Where the helper is: the compiled file next to this one, or its source when run through tsx. */
function helperEntry (): { file: string; execArgv: string[] } {
  const js = fileURLToPath(new URL('./spawn-helper.js', import.meta.url))
  if (existsSync(js)) return { file: js, execArgv: HELPER_V8 }
  return { file: fileURLToPath(new URL('./spawn-helper.ts', import.meta.url)), execArgv: [...HELPER_V8, '--import', 'tsx'] }
}

/**
 * The helper in Perl (libexec/spawn-helper.pl: perl-base modules only, which Debian always has), where
 * perl is installed: the same messages over the same channel, the same process groups, niceness
 * and folders, in ~9 MiB of RSS against ~45 for a Node.js process (35 of them the node binary's
 * pages). RRCLOUD_SPAWN_HELPER=node chooses the Node.js helper (spawn-helper.ts) anyway.
 */
function perlHelper (): { perl: string; file: string } | undefined {
  if (process.env.RRCLOUD_SPAWN_HELPER === 'node') return undefined
  const file = fileURLToPath(new URL('../../libexec/spawn-helper.pl', import.meta.url))
  if (!existsSync(file)) return undefined
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    if (dir && existsSync(join(dir, 'perl'))) return { perl: join(dir, 'perl'), file }
  }
  return undefined
}

/**
 * One spawn helper process, started on first use, for tools of one CPU niceness: it runs at that
 * niceness itself, so that each tool has it from its first instruction, with no nice(1) to start
 * first. If it dies, the tools it was watching are killed (their exits could no longer be seen)
 * and reported as failed; the next task starts a new helper. While no task runs it does not keep
 * the node's event loop alive.
 */
class Helper {
  private child?: ChildProcess
  private jobs = new Map<number, Pending>()
  private seq = 0

  constructor (private readonly nice: number) {}

  private start (): ChildProcess {
    const args = this.nice ? [`--nice=${this.nice}`] : []
    const stdio = ['ignore', 'inherit', 'inherit', 'ipc'] as const
    const perl = perlHelper()
    let child: ChildProcess
    if (perl) {
      child = spawn(perl.perl, [perl.file, ...args], { stdio: [...stdio], serialization: 'json' })
    } else {
      const { file, execArgv } = helperEntry()
      // the helper's own flags only: no profiler or inspector options inherited from the node
      child = fork(file, args, { execArgv, stdio: [...stdio], serialization: 'json' })
    }
    log('spawn helper %d started (%s)', child.pid, perl ? 'perl' : 'node')
    child.on('message', (m: SpawnReport) => this.onReport(m))
    child.on('error', (err) => {
      log('spawn helper error: %s', err.message)
      // it never started: there will be no exit event
      if (child.pid === undefined) this.onHelperExit(child, null, null)
    })
    child.once('exit', (code, signal) => this.onHelperExit(child, code, signal))
    this.child = child
    this.setRef(false)
    return child
  }

  private setRef (on: boolean) {
    const child = this.child
    if (!child) return
    const ch = child.channel as Channel
    if (on) { child.ref(); ch?.ref?.() } else { child.unref(); ch?.unref?.() }
  }

  private onReport (m: SpawnReport) {
    const job = this.jobs.get(m.n)
    if (!job) return
    if (m.t === 'pid') {
      job.pid = m.pid
      job.started = true
      job.events.onPid(m.pid)
    } else if (m.t === 'progress') {
      job.events.onProgress(m.text)
    } else if (m.t === 'missing') {
      job.events.onMissing(m.text)
    } else {
      this.finish(m.n, job, m.code, m.signal, m.error, undefined, m.folder)
    }
  }

  private finish (n: number, job: Pending, code: number | null, signal: NodeJS.Signals | null, error?: string, lost?: string, folder?: boolean) {
    this.jobs.delete(n)
    if (this.jobs.size === 0) this.setRef(false)
    if (!job.started) { job.started = true; job.events.onPid(undefined) }
    job.events.onExit(code, signal, error, lost, folder)
  }

  private onHelperExit (child: ChildProcess, code: number | null, signal: NodeJS.Signals | null) {
    if (this.child === child) this.child = undefined
    const why = code === null && signal === null ? 'the spawn helper could not be started' : `the spawn helper exited (${signal ?? `code ${code}`})`
    log(why)
    for (const [n, job] of [...this.jobs]) {
      if (job.pid !== undefined) {
        try { process.kill(-job.pid, 'SIGKILL') } catch {}
        this.finish(n, job, null, 'SIGKILL', undefined, `${why}; the tool was stopped`)
      } else {
        this.finish(n, job, null, null, why)
      }
    }
  }

  run (job: SpawnJob, events: SpawnEvents): void {
    const child = this.child ?? this.start()
    const n = ++this.seq
    const req: SpawnRequest = {
      t: 'run',
      n,
      exe: job.exe,
      args: job.args,
      cwd: job.cwd,
      logFile: job.logFile,
      ...(job.env && Object.keys(job.env).length ? { env: job.env } : {}),
      ...(job.envOnly ? { envOnly: true } : {}),
      ...(job.stdoutTo ? { stdoutTo: job.stdoutTo } : {}),
      ...(job.folder ? { folder: job.folder } : {}),
      ...(job.progress ? { progress: { source: job.progress.source, flags: job.progress.flags } } : {}),
      ...(job.missing ? { missing: { source: job.missing.source, flags: job.missing.flags } } : {}),
    }
    if (this.jobs.size === 0) this.setRef(true)
    this.jobs.set(n, { events, started: false })
    child.send(req, (err) => {
      if (!err) return
      const p = this.jobs.get(n)
      if (p) this.finish(n, p, null, null, `could not reach the spawn helper: ${err.message}`)
    })
  }
}

/** Starts tools through the helper of their niceness (one per node process in practice: a node has one --nice). */
class Spawner {
  private helpers = new Map<number, Helper>()

  run (job: SpawnJob, events: SpawnEvents): void {
    const nice = job.nice ?? 0
    let h = this.helpers.get(nice)
    if (!h) this.helpers.set(nice, h = new Helper(nice))
    h.run(job, events)
  }
}

export const spawner = new Spawner()
