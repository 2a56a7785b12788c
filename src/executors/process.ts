import debug from 'debug'
import { spawner, type SpawnJob } from './spawner.js'

const log = debug('rrcloud:process')

/** A tool to run: what the spawn helper needs (SpawnJob: exe, args, cwd, env, logFile, stdoutTo, progress, missing), and how to watch it. */
export interface RunOptions extends SpawnJob {
  timeoutMs: number
  onProgress?: (text: string) => void
  /** delay between the steps SIGINT → SIGTERM → SIGKILL */
  graceMs?: number
}

export interface RunResult {
  exitCode: number | null
  signal: NodeJS.Signals | null
  timedOut: boolean
  cancelled: boolean
  /** could not be started: why */
  error?: string
  /** started, but its end could not be watched (the spawn helper died): why; the tool was killed */
  lost?: string
  /** not started: its folder could not be made (`error` says why) */
  folder?: boolean
  /** the first line of its output that matched `missing`: a file it needed could not be opened */
  missing?: string
}

export interface RunHandle {
  pid: number | undefined
  /** resolves with the pid once the process runs (undefined if it could not be started) */
  started?: Promise<number | undefined>
  done: Promise<RunResult>
  cancel (): void
  pause (): void
  resume (): void
}

/** A task's error when its tool said it could not open a file the model needs (descriptor `missing`). */
export const missingError = (line: string): string => `the tool could not open a file of the model: ${line}`

function signalGroup (pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, sig)
    return true
  } catch {
    return false
  }
}

/**
 * Runs one tool as a child process in a process group of its own, never through a shell. The
 * child is started by the spawn helper (./spawner.ts), so that the node never forks itself.
 * Cancel and timeout escalate SIGINT → SIGTERM → SIGKILL on the whole group.
 */
export function runProcess (o: RunOptions): RunHandle {
  const grace = o.graceMs ?? 2000
  let pid: number | undefined
  let timedOut = false
  let cancelled = false
  let paused = false
  let exited = false
  let stopping = false
  let missing: string | undefined
  const timers: NodeJS.Timeout[] = []

  const stop = () => {
    stopping = true
    // no pid yet: stop() runs again once the helper reports it
    if (exited || pid === undefined) return
    const group = pid
    const steps: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGKILL']
    steps.forEach((sig, i) => timers.push(setTimeout(() => {
      if (exited) return
      log('sending %s to group %d', sig, group)
      signalGroup(group, sig)
      if (paused) signalGroup(group, 'SIGCONT')
    }, i * grace)))
  }
  if (o.timeoutMs > 0 && Number.isFinite(o.timeoutMs)) {
    timers.push(setTimeout(() => { timedOut = true; stop() }, o.timeoutMs))
  }

  let onStarted!: (pid: number | undefined) => void
  const started = new Promise<number | undefined>((resolve) => { onStarted = resolve })
  const done = new Promise<RunResult>((resolve) => {
    // the SpawnJob part of the options goes to the helper as it is
    const { timeoutMs: _t, onProgress: _p, graceMs: _g, ...job } = o
    spawner.run({ ...job, progress: o.progress && o.onProgress ? o.progress : undefined }, {
      onPid (p) {
        pid = p
        log('spawned %s %o pid %d', o.exe, o.args, p)
        if (p !== undefined && paused) signalGroup(p, 'SIGSTOP')
        onStarted(p)
        if (stopping) stop()
      },
      onProgress (text) { o.onProgress?.(text) },
      onMissing (text) { missing ??= text },
      onExit (code, signal, error, lost, folder) {
        exited = true
        timers.forEach(clearTimeout)
        resolve({ exitCode: code, signal, timedOut, cancelled, error, ...(lost ? { lost } : {}), ...(missing ? { missing } : {}), ...(folder ? { folder } : {}) })
      },
    })
  })

  return {
    get pid () { return pid },
    started,
    done,
    cancel () {
      if (cancelled || exited) return
      cancelled = true
      stop()
    },
    // before the pid is known, pausing is remembered and done once it is
    pause () {
      if (paused || exited) return
      if (pid === undefined || signalGroup(pid, 'SIGSTOP')) paused = true
    },
    resume () {
      if (!paused) return
      if (pid === undefined || signalGroup(pid, 'SIGCONT')) paused = false
    },
  }
}
