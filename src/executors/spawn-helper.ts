// The spawn helper: a small, long-lived process that starts the node's tools on its behalf, so
// that the node itself never forks (fork copies the page tables of the whole node, ~100 MiB, for
// every task). It makes the task's folder, opens its log and output files, spawns the tool in a
// process group of its own, scans its output for progress and for files the tool could not open,
// and reports pid, progress, the first such file and exit over IPC; before it reports the exit,
// it moves the output aside and removes the folder. The node's event loop does none of it.
// Signals (cancel, timeout, pause) are sent by the node to the tool's process group directly.
// It exits when the node does (the IPC channel closes); tools it started keep running, as they
// would have if the node had started them, and a restarted node stops them.
// libexec/spawn-helper.pl does the same in Perl, and is the one the node starts where perl is
// installed (spawner.ts): a change here is made there too (test/integration/spawn-helpers.test.ts
// gives both the same jobs).
import { spawn } from 'node:child_process'
import { closeSync, createWriteStream, openSync, writeFileSync, type WriteStream } from 'node:fs'
import { rename, rm } from 'node:fs/promises'
import { setPriority } from 'node:os'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import type { SpawnJob } from './spawner.js'
import { join } from 'node:path'
import { prepareFolder, type RunFolder } from './run-folder.js'

/** the niceness of every tool this helper starts (`--nice=N`): its own, which a forked tool inherits */
const nice = Number(/^--nice=(\d+)$/.exec(process.argv[2] ?? '')?.[1] ?? 0)

/** A RegExp as it travels over IPC (it does not survive JSON). */
export interface Pattern { source: string; flags: string }

/**
 * A job as it travels to the helper: SpawnJob (spawner.ts) with a number, and its patterns as
 * source and flags. `env` is added to the helper's environment, which is the node's as it was
 * when the helper started. Its niceness is the helper's own.
 */
export interface SpawnRequest extends Omit<SpawnJob, 'progress' | 'missing' | 'nice'> {
  t: 'run'
  n: number
  progress?: Pattern
  missing?: Pattern
}

export type SpawnReport =
  | { t: 'pid'; n: number; pid?: number }
  | { t: 'progress'; n: number; text: string }
  /** the first line of output that matched `missing` */
  | { t: 'missing'; n: number; text: string }
  /** `folder`: the error is that the task's folder could not be made */
  | { t: 'exit'; n: number; code: number | null; signal: NodeJS.Signals | null; error?: string; folder?: boolean }

function report (m: SpawnReport) {
  if (process.connected) process.send!(m)
}

/**
 * Lowers the priority of a tool's session. The tool has the helper's niceness from its start
 * (forked from the helper's main thread, which set its own); but it leads a session of its own
 * (setsid, for its process group), and with the kernel's autogroup scheduling each session is
 * weighed as one against the node's: so the session's nice value is set too, where the kernel has
 * autogroups. What the tool starts later inherits both. Best effort: the tool may already be gone.
 */
function lowerSession (pid: number) {
  try { writeFileSync(`/proc/${pid}/autogroup`, String(nice)) } catch {}
}

function killGroup (pid: number) {
  try { process.kill(-pid, 'SIGKILL') } catch {}
}

/** The tool's output moved aside, its folder removed: best effort (what is left is swept at the node's next start). */
async function clear (f: RunFolder) {
  if (f.keep) await rename(join(f.dir, f.keep.from), f.keep.to).catch(() => {})
  await rm(f.dir, { recursive: true, force: true }).catch(() => {})
}

function run (m: SpawnRequest) {
  if (m.folder) {
    try {
      prepareFolder(m.folder)
    } catch (e) {
      report({ t: 'pid', n: m.n })
      report({ t: 'exit', n: m.n, code: null, signal: null, error: (e as Error).message, folder: true })
      return
    }
  }
  let logFd: number
  let outFd: number | undefined
  try {
    logFd = openSync(m.logFile, 'a')
    try {
      outFd = m.stdoutTo ? openSync(m.stdoutTo, 'w') : undefined
    } catch (e) {
      closeSync(logFd)
      throw e
    }
  } catch (e) {
    report({ t: 'pid', n: m.n })
    if (m.folder) void clear(m.folder)
    report({ t: 'exit', n: m.n, code: null, signal: null, error: (e as Error).message })
    return
  }
  const regex = (p?: Pattern) => p && new RegExp(p.source, p.flags)
  const progress = regex(m.progress)
  let missing = regex(m.missing)
  // output is read here only when there is something to look for in it
  const scan = progress !== undefined || missing !== undefined
  const child = spawn(m.exe, m.args, {
    cwd: m.cwd,
    env: m.envOnly ? m.env ?? {} : m.env ? { ...process.env, ...m.env } : process.env,
    detached: true,
    shell: false,
    stdio: ['ignore', scan && outFd === undefined ? 'pipe' : (outFd ?? logFd), scan ? 'pipe' : logFd],
  })
  if (child.pid !== undefined && nice) lowerSession(child.pid)
  report({ t: 'pid', n: m.n, pid: child.pid })

  let sink: WriteStream | undefined
  if (scan) {
    sink = createWriteStream('', { fd: logFd })
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue
      stream.pipe(sink, { end: false })
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        if (progress?.test(line)) report({ t: 'progress', n: m.n, text: line.trim().slice(0, 200) })
        // the first is the one that counts
        if (missing?.test(line)) {
          missing = undefined
          report({ t: 'missing', n: m.n, text: line.trim().slice(0, 300) })
        }
      })
    }
  } else {
    // the child holds its own copies of the descriptors
    closeSync(logFd)
    if (outFd !== undefined) closeSync(outFd)
  }

  let finished = false
  const finish = async (code: number | null, signal: NodeJS.Signals | null, error?: string) => {
    if (finished) return
    finished = true
    // the leader is gone; make sure nothing it started outlives it
    if (child.pid !== undefined) killGroup(child.pid)
    if (sink) {
      sink.end()
      await once(sink, 'close')
      if (outFd !== undefined) closeSync(outFd)
    }
    if (m.folder) await clear(m.folder)
    report({ t: 'exit', n: m.n, code, signal, error })
  }
  child.once('error', (err) => { void finish(null, null, err.message) })
  child.once('close', (c, s) => { void finish(c, s) })
}

if (process.send) {
  // this thread forks every tool: they start with its niceness
  if (nice) setPriority(nice)
  process.on('message', (m: SpawnRequest) => { if (m && m.t === 'run') run(m) })
  // leave with the node; Ctrl-C and SIGTERM are for the node, which then stops its tasks through us
  process.on('disconnect', () => process.exit(0))
  process.on('SIGINT', () => {})
  process.on('SIGTERM', () => {})
  process.on('SIGHUP', () => {})
}
