// A pseudo-terminal with the simulated Marlin behind it: socat creates the pty and a link to it,
// and starts test/fixtures/marlin-sim.mjs when something opens the port (wait-slave, checked
// every 10 ms instead of socat's default 1 s).
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const SIM = fileURLToPath(new URL('../fixtures/marlin-sim.mjs', import.meta.url))

export interface SimStats {
  accepted: number
  errors: number
  /** when the first and the last numbered command was read (ms, the simulator's clock; wire time with --baud) */
  firstAt: number
  lastAt: number
  /** bytes of numbered lines received, newlines included */
  bytes: number
  /** most numbered lines received and not yet answered at once (receive buffer and command queue) */
  maxHeld: number
  /** the simulated command queue's size (BUFSIZE) */
  bufsize: number
}

export interface SimPty {
  /** the link to open as the serial port */
  path: string
  dir: string
  logFile: string
  statsFile: string
  /** every command the simulated firmware accepted so far, in order */
  log (): string[]
  /** every line that reached the simulated firmware, as it arrived (numbered ones with N and checksum) */
  received (): string[]
  /** makes the simulated firmware say these lines now (`start` reboots it; see marlin-sim.mjs --control) */
  say (...lines: string[]): void
  /** what the simulator wrote when the port closed (undefined before) */
  stats (): SimStats | undefined
  /** stops socat and the simulator, removes the directory (unless keepDir) */
  stop (opts?: { keepDir?: boolean }): Promise<void>
}

// Whether a process of this group still runs. Zombies do not count: once socat is gone the
// simulator is reaped by init, which may take a while in a container.
function groupRunning (pgid: number): boolean {
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (Number(pgrp) === pgid && state !== 'Z') return true
    } catch {} // gone meanwhile
  }
  return false
}

// socat splits its EXEC string at spaces and treats , : ! as syntax; keep arguments plain
const PLAIN = /^[\w./=+-]+$/

export async function startSimPty (simArgs: string[] = [], opts: { dir?: string, timeoutMs?: number } = {}): Promise<SimPty> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'rrcloud-pty-'))
  const path = join(dir, 'tty')
  const logFile = join(dir, 'sim.log')
  const statsFile = join(dir, 'sim.stats.json')
  const receivedFile = join(dir, 'sim.received')
  const pidFile = join(dir, 'sim.pid')
  const controlFile = join(dir, 'sim.control')
  const argv = [process.execPath, SIM, '--log', logFile, '--stats', statsFile, '--received', receivedFile, '--pid', pidFile, '--control', controlFile, ...simArgs]
  for (const a of argv) if (!PLAIN.test(a)) throw new Error(`cannot pass ${JSON.stringify(a)} through socat EXEC`)
  const child: ChildProcess = spawn('socat', [`pty,link=${path},raw,echo=0,wait-slave,pty-interval=0.01`, `EXEC:${argv.join(' ')}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true, // its own process group: socat and the simulator are stopped together
  })
  let stderr = ''
  child.stderr!.on('data', (d) => { stderr += String(d) })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const deadline = Date.now() + (opts.timeoutMs ?? 5000)
  while (!existsSync(path)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL')
      throw new Error(`socat did not create ${path}: ${stderr.trim() || 'timeout'}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return {
    path,
    dir,
    logFile,
    statsFile,
    log: () => existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter(Boolean) : [],
    received: () => existsSync(receivedFile) ? readFileSync(receivedFile, 'utf8').split('\n').filter(Boolean) : [],
    say (...lines) {
      writeFileSync(controlFile, lines.join('\n') + '\n')
      process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGUSR1')
    },
    stats: () => existsSync(statsFile) ? JSON.parse(readFileSync(statsFile, 'utf8')) as SimStats : undefined,
    async stop ({ keepDir = false } = {}) {
      const group = -child.pid!
      if (child.exitCode === null && child.signalCode === null) {
        try { process.kill(group, 'SIGTERM') } catch {}
      }
      // socat may be gone while the simulator still writes its stats: wait for the whole group
      const deadline = Date.now() + 2000
      while (groupRunning(child.pid!) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
      if (groupRunning(child.pid!)) try { process.kill(group, 'SIGKILL') } catch {}
      await exited
      if (!keepDir && !opts.dir) rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** What the simulator wrote once the port closed, waited for (up to 3 s; it may still be writing it). */
export async function statsOf (sim: SimPty): Promise<SimStats> {
  for (let i = 0; i < 300; i++) {
    try {
      const stats = sim.stats()
      if (stats) return stats
    } catch {} // still being written
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error('the simulator wrote no stats')
}
