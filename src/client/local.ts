import { copyFileSync, createReadStream, createWriteStream, existsSync, mkdtempSync, renameSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, delimiter, dirname, join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { compose, resolveService, taskEnv, type ServiceDescriptor } from '../executors/services.js'
import { missingError, runProcess } from '../executors/process.js'
import type { Rewritten } from './args.js'
import { ClientError, EXIT } from './errors.js'
import { isSpecial } from './output.js'
import type { Reporter } from './progress.js'

/** Puts a finished file where the user asked, never leaving half a file there. */
export async function moveInto (from: string, dest: string): Promise<void> {
  if (isSpecial(dest)) return pipeline(createReadStream(from), createWriteStream(dest))
  try {
    renameSync(from, dest)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err
    const part = join(dirname(dest), `.${basename(dest)}.${process.pid}.part`)
    try {
      copyFileSync(from, part)
      renameSync(part, dest)
    } finally {
      rmSync(part, { force: true })
    }
  }
}

/** Whether the service's tool is installed on this machine. */
export const installedHere = (d: ServiceDescriptor): boolean => resolveService(d).available

/**
 * The tool's environment here: the user's, with the descriptor's variables; a variable that names
 * the task's folder (`$task`) is a search path, and keeps the user's own value of it after it.
 */
function localEnv (env: Record<string, string>, taskDir: string): Record<string, string> {
  const out = taskEnv(env, taskDir)
  for (const [k, v] of Object.entries(env)) {
    const own = process.env[k]
    if (v.includes('$task') && own) out[k] += delimiter + own
  }
  return out
}

/** --local: runs the service's tool on this machine, in a scratch folder, with no node involved. */
export async function runLocal (d: ServiceDescriptor, rw: Rewritten, reporter: Reporter): Promise<number> {
  const s = resolveService(d)
  if (!s.available || !s.exe) throw new ClientError(`${d.name} cannot run here: ${s.reason}; see \`rrcloud doctor\``, EXIT.failed)
  const tmp = mkdtempSync(join(tmpdir(), 'rrcloud-local-'))
  try {
    const c = compose(s, 'out', rw.inputs, tmp)
    const logFile = join(tmp, 'log')
    const h = runProcess({
      exe: s.exe,
      args: c.args,
      cwd: tmp,
      env: localEnv(s.env, tmp),
      logFile,
      stdoutTo: c.stdoutTo,
      timeoutMs: (d.timeout ?? 1800) * 1000,
      progress: reporter.enabled ? s.progress : undefined,
      missing: s.missing,
      onProgress: (p) => reporter.state(`${d.name} (local) ${p}`),
    })
    reporter.state(`${d.name} (local) running`)
    const cancel = () => h.cancel()
    process.once('SIGINT', cancel)
    const r = await h.done
    process.off('SIGINT', cancel)
    reporter.done()
    const ok = r.exitCode === 0 && !r.missing && (!c.outFile || existsSync(c.outFile))
    if (!ok) {
      await pipeline(createReadStream(logFile), process.stderr, { end: false })
      const why = r.cancelled ? 'cancelled' : r.timedOut ? 'timed out' : r.error ?? (r.missing ? missingError(r.missing) : r.signal ? `killed by ${r.signal}` : r.exitCode === 0 ? 'it wrote no output' : `exit code ${r.exitCode}`)
      process.stderr.write(`rrcloud: ${d.name} failed here (${why})\n`)
      return r.cancelled ? EXIT.interrupted : r.exitCode || EXIT.failed
    }
    if (!c.outFile) return 0
    if (rw.output) await moveInto(c.outFile, rw.output)
    else await pipeline(createReadStream(c.outFile), process.stdout, { end: false })
    return 0
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
}
