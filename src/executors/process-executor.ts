import { createReadStream, renameSync, rmSync } from 'node:fs'
import { constants } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import type { ExecEnd, ExecInput, Execution, Executor } from './executor.js'
import { missingError, runProcess } from './process.js'
import { runFolder, toolEnv, wrap, type Limits, type Sandbox } from './sandbox.js'
import { compose, deniedSetting, type ResolvedService } from './services.js'

export interface ProcessExecutorConfig {
  sandbox: Sandbox
  /** the node's limits; a descriptor may set lower ones */
  limits?: Limits
  /** where task folders are made (tasks/run) */
  runRoot: string
  nice?: number
  graceMs?: number
}

/** the smaller of two limits, where 0 or undefined is none */
const lower = (a?: number, b?: number) => (a && b ? Math.min(a, b) : a || b || undefined)

/** bwrap runs the tool under an init of its own, which reports a signal as the exit code 128 + n */
function exitReason (sb: Sandbox, code: number | null): string {
  const sig = sb.mode === 'bwrap' && code !== null && code > 128
    ? Object.entries(constants.signals).find(([, n]) => n === code - 128)?.[0]
    : undefined
  return sig ? `killed by ${sig}` : `exited with code ${code}`
}

/** The first setting of a config that names a program (descriptor `deny`), read line by line. */
async function deniedIn (s: ResolvedService, path: string): Promise<string | undefined> {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity })
  for await (const line of lines) {
    const hit = deniedSetting(s, line)
    if (hit) { lines.close(); return hit }
  }
  return undefined
}

/**
 * A service's tool, run as a child process in the task's own folder (tasks/run/ID), sandboxed as
 * the node is set up to (./sandbox.ts). Its output moves to tasks/out only when it exits with 0
 * and said nothing that the descriptor's `missing` matches.
 */
export function createProcessExecutor (s: ResolvedService, config: ProcessExecutorConfig): Executor {
  /** the command line in the task's folder: inputs by their names there, the output beside them */
  const compose1 = (id: string, inputs: ExecInput[]) => compose(s, id, inputs.map((i) => ({ path: i.name, prearg: i.prearg })), '')
  const limits: Limits = {
    memoryMiB: lower(config.limits?.memoryMiB, s.limits.memoryMiB),
    cpuSec: lower(config.limits?.cpuSec, s.limits.cpuSec),
    fileMiB: lower(config.limits?.fileMiB, s.limits.fileMiB),
    procs: lower(config.limits?.procs, s.limits.procs),
  }
  return {
    plan (id, inputs) {
      const c = compose1(id, inputs)
      return { cmd: [basename(s.exe!), ...c.args].join(' ') + (c.stdoutTo ? ` > ${c.stdoutTo}` : ''), out: c.outFile }
    },
    async refuse (inputs) {
      if (s.deny.length === 0) return undefined
      for (const [n, i] of inputs.entries()) {
        const hit = i.prearg ? await deniedIn(s, i.host) : undefined
        if (hit) return `fileIn${n} sets ${hit}: a node does not run programs named in configs; remove the line (and run it on the G-code yourself)`
      }
      return undefined
    },
    start (job): Execution {
      const runDir = join(config.runRoot, job.id)
      const c = compose1(job.id, job.inputs)
      // the output waits beside its place in tasks/out, hidden (never served), until the task is known to be complete
      const held = c.outFile && job.outFile ? join(dirname(job.outFile), `.${basename(job.outFile)}`) : undefined
      // made afresh (a rerun's folder keeps nothing of an earlier attempt) and removed by the spawn helper
      const folder = runFolder(config.sandbox, runDir, [...job.inputs, ...job.files], held ? { from: c.outFile!, to: held } : undefined)
      const cmd = wrap(config.sandbox, { exe: s.exe!, args: c.args, runDir, inputs: [...job.inputs, ...job.files], ro: s.sandboxRo, env: s.env, limits })
      const h = runProcess({
        ...cmd,
        cwd: runDir,
        folder,
        env: toolEnv(config.sandbox, runDir, s.env),
        envOnly: true,
        logFile: job.logFile,
        stdoutTo: c.stdoutTo && join(runDir, c.stdoutTo),
        timeoutMs: job.timeoutMs ?? 0,
        progress: s.progress,
        missing: s.missing,
        onProgress: (text) => job.onUpdate({ progress: text }),
        graceMs: config.graceMs,
        nice: config.nice,
      })
      // the end is settled in the turn the exit is heard (the helper has cleared the folder by then):
      // the slot goes to the next task at once, not after rounds of a busy event loop
      const done = h.done.then((r): ExecEnd => {
        const end = ((): ExecEnd => {
          const exitCode = r.exitCode
          if (r.folder) return { status: 'failed', exitCode, error: `could not prepare the task's folder: ${r.error}` }
          if (r.cancelled) return { status: 'cancelled', exitCode }
          if (r.timedOut) return { status: 'failed', exitCode, error: `timed out after ${Math.round((job.timeoutMs ?? 0) / 1000)} s` }
          if (r.lost) return { status: 'failed', exitCode, error: r.lost }
          if (r.error) return { status: 'failed', exitCode, error: `could not start ${s.exe}: ${r.error}` }
          // a model without one of its files gives another result, often with exit code 0: none is kept
          if (r.missing) return { status: 'failed', exitCode, error: missingError(r.missing) }
          if (r.exitCode !== 0) return { status: 'failed', exitCode, error: r.signal ? `killed by ${r.signal}` : exitReason(config.sandbox, r.exitCode) }
          if (!held) return { status: 'complete', exitCode }
          // the output becomes visible under tasks/out only now, whole: nothing partial is ever served
          try {
            renameSync(held, job.outFile!)
            return { status: 'complete', exitCode }
          } catch (e) {
            const err = e as NodeJS.ErrnoException
            return { status: 'failed', exitCode, error: err.code === 'ENOENT' ? 'the tool exited without writing its output' : `could not keep the output: ${err.message}` }
          }
        })()
        if (held && end.status !== 'complete') rmSync(held, { force: true })
        // a helper that died, or a folder that could not be made whole, left the folder
        if (r.lost || r.folder) rmSync(runDir, { recursive: true, force: true })
        return end
      })
      return {
        get pid () { return h.pid },
        started: h.started,
        done,
        cancel: () => h.cancel(),
        pause: () => h.pause(),
        resume: () => h.resume(),
      }
    },
  }
}
