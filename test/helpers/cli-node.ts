import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { root, testServices, until } from './node.js'

/** Starts the built `rrcloud node` as a real process (one slot, test services) and waits for its listening line. */
export async function startCli (dataDir: string, extra: string[] = []): Promise<{ proc: ChildProcess; url: string; out: string[] }> {
  const proc = spawn(process.execPath, [join(root, 'bin/run.js'), 'node', '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir,
    '--services', testServices, '--slots', '1', '--no-mdns', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] })
  const out: string[] = []
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => out.push(...d.split('\n').filter(Boolean)))
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => out.push(d))
  const line = await until(() => out.find((l) => l.includes('listening on')), 15000, 'the node to listen')
  return { proc, url: /listening on (http:\/\/\S+)/.exec(line)![1], out }
}
