import { spawn } from 'node:child_process'
import { closeSync, createWriteStream, openSync, type WriteStream } from 'node:fs'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import debug from 'debug'

const log = debug('rrcloud:process')

export interface RunOptions {
  exe: string
  args: string[]
  cwd: string
  env?: Record<string, string>
  /** stdout and stderr are appended here */
  logFile: string
  /** when set, stdout goes to this file instead of the log */
  stdoutTo?: string
  timeoutMs: number
  /** lines of output matching this are reported through onProgress */
  progress?: RegExp
  onProgress?: (text: string) => void
  /** delay between the steps SIGINT → SIGTERM → SIGKILL */
  graceMs?: number
}

export interface RunResult {
  exitCode: number | null
  signal: NodeJS.Signals | null
  timedOut: boolean
  cancelled: boolean
  error?: string
}

export interface RunHandle {
  pid: number | undefined
  done: Promise<RunResult>
  cancel (): void
  pause (): void
  resume (): void
}

function signalGroup (pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, sig)
    return true
  } catch {
    return false
  }
}

/**
 * Runs one tool as a child process in a process group of its own, never through a shell.
 * Cancel and timeout escalate SIGINT → SIGTERM → SIGKILL on the whole group.
 */
export function runProcess (o: RunOptions): RunHandle {
  const grace = o.graceMs ?? 2000
  const logFd = openSync(o.logFile, 'a')
  const outFd = o.stdoutTo ? openSync(o.stdoutTo, 'w') : undefined
  const scan = Boolean(o.progress && o.onProgress)
  const child = spawn(o.exe, o.args, {
    cwd: o.cwd,
    env: { ...process.env, ...o.env },
    detached: true,
    shell: false,
    stdio: ['ignore', scan && outFd === undefined ? 'pipe' : (outFd ?? logFd), scan ? 'pipe' : logFd],
  })
  log('spawned %s %o pid %d', o.exe, o.args, child.pid)
  let timedOut = false
  let cancelled = false
  let paused = false
  let exited = false
  const timers: NodeJS.Timeout[] = []

  let sink: WriteStream | undefined
  if (scan) {
    sink = createWriteStream('', { fd: logFd })
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue
      stream.pipe(sink, { end: false })
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        if (o.progress!.test(line)) o.onProgress!(line.trim().slice(0, 200))
      })
    }
  }

  const stop = () => {
    if (exited || child.pid === undefined) return
    const pid = child.pid
    const steps: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGKILL']
    steps.forEach((sig, i) => timers.push(setTimeout(() => {
      if (exited) return
      log('sending %s to group %d', sig, pid)
      signalGroup(pid, sig)
      if (paused) signalGroup(pid, 'SIGCONT')
    }, i * grace)))
  }
  if (o.timeoutMs > 0 && Number.isFinite(o.timeoutMs)) {
    timers.push(setTimeout(() => { timedOut = true; stop() }, o.timeoutMs))
  }

  const done = (async (): Promise<RunResult> => {
    let spawnError: string | undefined
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
      child.once('error', (err) => { spawnError = err.message; resolve([null, null]) })
      child.once('close', (c, s) => resolve([c, s]))
    })
    exited = true
    timers.forEach(clearTimeout)
    // the leader is gone; make sure nothing it started outlives it
    if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL')
    if (sink) {
      sink.end()
      await once(sink, 'close')
    } else closeSync(logFd)
    if (outFd !== undefined) closeSync(outFd)
    return { exitCode: code, signal, timedOut, cancelled, error: spawnError }
  })()

  return {
    pid: child.pid,
    done,
    cancel () {
      if (cancelled || exited) return
      cancelled = true
      stop()
    },
    pause () {
      if (!paused && !exited && child.pid !== undefined && signalGroup(child.pid, 'SIGSTOP')) paused = true
    },
    resume () {
      if (paused && child.pid !== undefined && signalGroup(child.pid, 'SIGCONT')) paused = false
    },
  }
}

