// What N client processes started at once (a shell loop with `&`, `make -j`) cost the machine
// before any task runs: N `echo.cloud --no-cache` runs against one node (in this process, on
// 127.0.0.1, mDNS off), against N `node -e 0` started the same way, in alternating rounds. Each
// process runs under /usr/bin/time, which reports its CPU (user + system). On C cores, N processes
// that each need T ms of CPU before their upload cannot all have uploaded before N × T / C ms,
// whatever the scheduler: that bounds how soon a batch of N separate submissions can start.
//
//   node --import tsx bench/client-burst.ts [--processes 30] [--rounds 3]
// (after `npm run build`: the clients are bin/echo.cloud as built)
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startNode } from '../src/node/node.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const { values: opt } = parseArgs({ options: { processes: { type: 'string', default: '30' }, rounds: { type: 'string', default: '3' } } })
const N = Number(opt.processes)
const TIME = '/usr/bin/time'
if (!existsSync(TIME)) throw new Error(`${TIME} is missing (apt install time): it reports each process's CPU`)
if (!existsSync(join(root, 'dist', 'bundle', 'main.cjs'))) throw new Error('run `npm run build` first')

interface Burst { wallMs: number, cpuMs: number[] }

/** Starts `argv` N times at once, each under /usr/bin/time; resolves when all have ended. */
async function burst (dir: string, argv: (i: number) => string[]): Promise<Burst> {
  const started = performance.now()
  const runs = Array.from({ length: N }, (_, i) => new Promise<number>((resolve, reject) => {
    const out = join(dir, `time-${i}`)
    const p = spawn(TIME, ['-f', '%U %S', '-o', out, ...argv(i)], { stdio: 'ignore', cwd: dir, env: { ...process.env, RRCLOUD_MDNS: 'off' } })
    p.on('error', reject)
    p.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`${argv(i).join(' ')}: exit ${code}`))
      const [user, sys] = readFileSync(out, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number)
      resolve((user + sys) * 1000)
    })
  }))
  const cpuMs = await Promise.all(runs)
  return { wallMs: performance.now() - started, cpuMs }
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]
const sum = (a: number[]) => a.reduce((s, x) => s + x, 0)

const dir = mkdtempSync(join(tmpdir(), 'rrcloud-burst-'))
const node = await startNode({ port: 0, host: '127.0.0.1', dataDir: join(dir, 'data'), mdns: false, slots: 2, nice: 0 })
try {
  for (let i = 0; i < N; i++) writeFileSync(join(dir, `f${i}.txt`), `file ${i}\n`)
  const server = `--s=127.0.0.1:${node.port}`
  const cores = availableParallelism()
  const load = loadavg()[0].toFixed(2)
  const rows: Array<{ round: number, client: Burst, bare: Burst }> = []
  for (let r = 0; r < Number(opt.rounds); r++) {
    const client = await burst(dir, (i) => [join(root, 'bin', 'echo.cloud'), '--no-cache', server, `f${i}.txt`])
    const bare = await burst(dir, () => [process.execPath, '-e', '0'])
    rows.push({ round: r + 1, client, bare })
  }
  console.log(`${N} processes at once, ${cores} cores, load average ${load} before, ${loadavg()[0].toFixed(2)} after\n`)
  console.log('| round | echo.cloud: all done (ms) | CPU per process p50 (ms) | CPU of all (ms) | all CPU / cores (ms) | `node -e 0`: all done (ms) | CPU per process p50 (ms) | CPU of all (ms) |')
  console.log('|---|---|---|---|---|---|---|---|')
  for (const { round, client, bare } of rows) {
    console.log(`| ${round} | ${client.wallMs.toFixed(0)} | ${median(client.cpuMs).toFixed(0)} | ${sum(client.cpuMs).toFixed(0)} | ${(sum(client.cpuMs) / cores).toFixed(0)} | ${bare.wallMs.toFixed(0)} | ${median(bare.cpuMs).toFixed(0)} | ${sum(bare.cpuMs).toFixed(0)} |`)
  }
} finally {
  await node.close()
  rmSync(dir, { recursive: true, force: true })
}
