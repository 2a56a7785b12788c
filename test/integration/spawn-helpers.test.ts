// The two spawn helpers (libexec/spawn-helper.pl, which the node uses where perl is installed, and
// src/executors/spawn-helper.ts) given the same jobs over the same channel: their reports and the
// files they leave must be the same. Real processes: sh, cat, sleep.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fork, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { SpawnReport, SpawnRequest } from '../../src/executors/spawn-helper.js'

const perlFile = fileURLToPath(new URL('../../libexec/spawn-helper.pl', import.meta.url))
const nodeFile = fileURLToPath(new URL('../../src/executors/spawn-helper.ts', import.meta.url))
const hasPerl = ['/usr/bin/perl', '/bin/perl'].some(existsSync)
const stdio = ['ignore', 'inherit', 'inherit', 'ipc'] as ('ignore' | 'inherit' | 'ipc')[]

function start (kind: 'perl' | 'node', nice: number): ChildProcess {
  const args = nice ? [`--nice=${nice}`] : []
  return kind === 'perl'
    ? spawn('perl', [perlFile, ...args], { stdio, serialization: 'json' })
    : fork(nodeFile, args, { execArgv: ['--import', 'tsx'], stdio, serialization: 'json' })
}

type Job = Omit<SpawnRequest, 't' | 'n' | 'logFile' | 'cwd'> & { cwd?: string }

/** Runs the jobs one after the other; per job its reports (pid numbers left out), log and output. */
async function runAll (kind: 'perl' | 'node', jobs: Job[], nice = 0) {
  const dir = mkdtempSync(join(tmpdir(), `rrcloud-helpers-${kind}-`))
  const helper = start(kind, nice)
  try {
    writeFileSync(join(dir, 'in.txt'), 'hello\n')
    const out: unknown[] = []
    for (const [i, job] of jobs.entries()) {
      const n = i + 1
      const at = (s: string) => s.replaceAll('DIR', dir)
      const req: SpawnRequest = JSON.parse(at(JSON.stringify({ t: 'run', n, cwd: dir, logFile: join(dir, `log${n}`), ...job })))
      const reports: unknown[] = []
      await new Promise<void>((resolve) => {
        const on = (m: SpawnReport) => {
          if (m.n !== n) return
          if (m.t === 'pid') {
            reports.push({ t: 'pid', started: m.pid !== undefined })
            // the job that sleeps gets SIGTERM (its whole group) after 300 ms
            if (m.pid !== undefined && req.args.includes('sleep 30 & sleep 30')) setTimeout(() => { try { process.kill(-m.pid!, 'SIGTERM') } catch {} }, 300)
          } else reports.push(m)
          if (m.t === 'exit') { helper.off('message', on); resolve() }
        }
        helper.on('message', on)
        helper.send(req)
      })
      const read = (f: string) => existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8').replaceAll(dir, 'DIR') : null
      out.push({ reports: JSON.parse(JSON.stringify(reports).replaceAll(dir, 'DIR')), log: read(`log${n}`), out: read(`out${n}`), kept: read(`kept${n}`), folderLeft: existsSync(join(dir, `run${n}`)) })
    }
    return out
  } finally {
    helper.disconnect()
    rmSync(dir, { recursive: true, force: true })
  }
}

const jobs: Job[] = [
  // progress, the first missing file, lines ending in \n, \r\n and \r, output not UTF-8 and not
  // ASCII (stdout and stderr are read apart: the pauses keep their order the same in both)
  {
    exe: '/bin/sh',
    args: ['-c', 'echo "Rendering \u00fcn\u00ef 1"; sleep 0.2; echo "=> step" 1>&2; sleep 0.2; printf "WARNING: Can\'t open library \'x\'\\r\\nRendering 2\\rRendering 3\\nWARNING: Can\'t open library \'y\'\\n\\377\\n"; exit 3'],
    progress: { source: '^(Rendering|=>)', flags: '' },
    missing: { source: "^warning: can't open (library) '", flags: 'i' },
  },
  // output to a file, progress read from stderr only
  { exe: '/bin/sh', args: ['-c', 'echo out; sleep 0.2; echo "=> err" 1>&2'], stdoutTo: 'DIR/out2', progress: { source: '^=> (.*)', flags: '' } },
  { exe: '/nonexistent/tool', args: [] },
  { exe: '/bin/true', args: [], cwd: 'DIR/no-such-folder' },
  // killed by a signal, with what it started
  { exe: '/bin/sh', args: ['-c', 'sleep 30 & sleep 30'] },
  // its own environment only; the descriptors it sees
  { exe: '/bin/sh', args: ['-c', 'echo "$FOO|$HOME|$PATH"; ls /proc/self/fd | grep -v "^3$" | tr "\\n" " "'], env: { FOO: 'bar', PATH: '/usr/bin:/bin' }, envOnly: true },
  // added to the helper's environment
  { exe: '/bin/sh', args: ['-c', 'echo "$FOO|${RRCLOUD_MDNS-unset}"'], env: { FOO: 'baz' } },
  // a task folder: inputs linked under their names (in folders), the output kept, the folder removed
  {
    exe: '/bin/sh',
    args: ['-c', 'cat a/b/in.txt > result; ls -l a | cut -c1-10'],
    cwd: 'DIR/run8',
    folder: { dir: 'DIR/run8', inputs: [{ host: 'DIR/in.txt', name: 'a/b/in.txt' }], mountPoints: true, keep: { from: 'result', to: 'DIR/kept8' } },
  },
  // a folder that cannot be made
  { exe: '/bin/true', args: [], cwd: 'DIR/in.txt/x', folder: { dir: 'DIR/in.txt/x', inputs: [], mountPoints: true } },
  // a log that cannot be opened
  { exe: '/bin/true', args: [], stdoutTo: 'DIR/in.txt/out' },
]

test('the Perl spawn helper reports what the Node.js one does, and leaves the same files', { skip: hasPerl ? false : 'no perl' }, async () => {
  const [perl, node] = [await runAll('perl', jobs), await runAll('node', jobs)]
  // a folder under a file: Node.js names the call that met ENOTDIR by version (unlink on 20 and 22,
  // mkdir on 24); the code and the path are the same
  const sameError = (r: unknown) => JSON.parse(JSON.stringify(r).replace(/"(E[A-Z]+): not a directory, (?:mkdir|unlink) /g, '"$1: not a directory, CALL '))
  for (const [i, p] of perl.entries()) assert.deepEqual(sameError(p), sameError(node[i]), `job ${i + 1}`)
  // and what was compared holds what it should
  const first = perl[0] as { reports: SpawnReport[], log: string }
  assert.deepEqual(first.reports.filter((r) => r.t === 'progress').map((r) => (r as { text: string }).text).sort(), ['=> step', 'Rendering 2', 'Rendering 3', 'Rendering \u00fcn\u00ef 1'])
  assert.deepEqual(first.reports.filter((r) => r.t === 'missing').map((r) => (r as { text: string }).text), ["WARNING: Can't open library 'x'"])
  assert.deepEqual(first.reports.at(-1), { t: 'exit', n: 1, code: 3, signal: null })
  assert.deepEqual((perl[2] as { reports: unknown[] }).reports.at(-1), { t: 'exit', n: 3, code: null, signal: null, error: 'spawn /nonexistent/tool ENOENT' })
  assert.deepEqual((perl[4] as { reports: unknown[] }).reports.at(-1), { t: 'exit', n: 5, code: null, signal: 'SIGTERM' })
  // 0 1 2, then only what the process that started the helper left open for its children
  assert.match((perl[5] as { log: string }).log, /^bar\|\|\/usr\/bin:\/bin\n0 1 2 /)
  assert.deepEqual(perl[7], { reports: [{ t: 'pid', started: true }, { t: 'exit', n: 8, code: 0, signal: null }], log: 'total 4\ndrwxr-xr-x\n', out: null, kept: 'hello\n', folderLeft: false })
  assert.equal((perl[8] as { reports: { folder?: boolean }[] }).reports.at(-1)?.folder, true)
})

test('the Perl spawn helper runs tools at its niceness, their session too', { skip: hasPerl ? false : 'no perl' }, async () => {
  const job: Job = { exe: '/bin/sh', args: ['-c', 'cut -d" " -f19 /proc/self/stat; cat /proc/self/autogroup 2>/dev/null | sed "s/.* nice/nice/"'] }
  const [perl, node] = [await runAll('perl', [job], 7), await runAll('node', [job], 7)]
  assert.deepEqual(perl, node)
  assert.match((perl[0] as { log: string }).log, /^7\n/)
})

test('tools that end at once, one after the other: every one is reaped and reported, with either helper', { skip: hasPerl ? false : 'no perl' }, async () => {
  for (const kind of ['perl', 'node'] as const) {
    // as a node with 2 slots under load: a tool starts when another has ended, at niceness 10
    const helper = start(kind, 10)
    const dir = mkdtempSync(join(tmpdir(), `rrcloud-helpers-${kind}-`))
    const total = 300
    try {
      let sent = 0
      let ended = 0
      const send = () => {
        sent++
        helper.send({ t: 'run', n: sent, exe: '/bin/true', args: [], cwd: dir, logFile: join(dir, `log${sent}`) } satisfies SpawnRequest)
      }
      const done = new Promise<void>((resolve) => {
        helper.on('message', (m: SpawnReport) => {
          if (m.t !== 'exit') return
          if (++ended === total) resolve()
          else if (sent < total) send()
        })
      })
      send(); send()
      await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 30_000))])
      assert.equal(ended, total, `${kind}: ${ended} of ${total} tools reported their end; the rest waited for one that was never reaped`)
    } finally {
      helper.disconnect()
      rmSync(dir, { recursive: true, force: true })
    }
  }
})
