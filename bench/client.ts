// Client benchmark, side by side in one run against one node (in this process, on 127.0.0.1):
//  1. echo.cloud on a 1 KiB file against a curl script doing the same POST, poll and GET;
//  2. a 1 GiB echo round trip (upload, run, download) with both: time, throughput, client peak RSS;
//  3. `rrcloud --version` against `node -e 0` (start-up cost).
// The client is the committed product (git HEAD), built into a temp folder by bench/lib/build-product.sh
// (tsc and the client bundle), run by its *.cloud name as a user runs it. Clients get RRCLOUD_MDNS=off:
// nothing is asked on the LAN. Uses hyperfine when installed, else repeated timing of its own.
//
//   node --import tsx bench/client.ts [--runs 30] [--big-mib 1024] [--big-runs 3] [--out bench/results/client.md]
import { spawn, spawnSync } from 'node:child_process'
import { createWriteStream, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { tmpdir, cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startNode } from '../src/node/node.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const { values: opt } = parseArgs({
  options: {
    runs: { type: 'string', default: '30' },
    'big-mib': { type: 'string', default: '1024' },
    'big-runs': { type: 'string', default: '3' },
    out: { type: 'string', default: join(root, 'bench', 'results', 'client.md') },
  },
})
const runs = Number(opt.runs)
const bigBytes = Number(opt['big-mib']) * 2 ** 20
const bigRuns = Number(opt['big-runs'])

const CURL = `#!/usr/bin/env bash
# What a user would script with curl: POST the file, poll until complete, GET the result.
set -euo pipefail
url=$1 in=$2 out=$3
id=$(curl -sS -F service=echo -F "fileIn0=@$in" "$url/" | sed -n 's/^id: //p')
until curl -sS "$url/?service=info&id=$id" | grep -q '^status: complete'; do sleep 0.05; done
curl -sS -o "$out" "$url/tasks/out/$id"
`

// every client started from here (hyperfine and its children inherit it) stays off mDNS
process.env.RRCLOUD_MDNS = 'off'
const tmp = mkdtempSync(join(tmpdir(), 'rrcloud-bench-client-'))
console.error('building the product (git HEAD)')
const build = spawnSync(join(root, 'bench', 'lib', 'build-product.sh'), [join(tmp, 'product')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
if (build.status !== 0) throw new Error(`bench/lib/build-product.sh failed (${build.status})`)
const rrcloud = build.stdout.trim().split('\n').pop()!
const echoCloud = join(rrcloud, '..', 'echo.cloud')
if (!existsSync(echoCloud)) throw new Error(`${echoCloud}: the build has no echo.cloud`)
const rev = spawnSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim()
const dataDir = join(tmp, 'data')
const node = await startNode({ port: 0, host: '127.0.0.1', dataDir, slots: 2, log: () => {} })
const url = node.url
const server = `--s=127.0.0.1:${node.port}`
const curlScript = join(tmp, 'curl-roundtrip.sh')
writeFileSync(curlScript, CURL, { mode: 0o755 })
const hasHyperfine = spawnSync('hyperfine', ['--version']).status === 0

async function writeRandom (file: string, bytes: number) {
  const out = createWriteStream(file)
  const chunk = randomBytes(1 << 20)
  for (let left = bytes; left > 0; left -= chunk.length) {
    if (!out.write(left >= chunk.length ? chunk : chunk.subarray(0, left))) await once(out, 'drain')
  }
  out.end()
  await once(out, 'close')
}

/** The node keeps every task's files; drop them between big runs so the disk does not fill. */
function dropTaskFiles () {
  for (const d of ['in', 'out']) for (const f of readdirSync(join(dataDir, 'tasks', d))) rmSync(join(dataDir, 'tasks', d, f), { force: true })
}

interface Timing { name: string; mean: number; sd: number; min: number; runs: number }

async function compare (commands: Array<[string, string[]]>, n: number): Promise<Timing[]> {
  if (hasHyperfine) {
    const json = join(tmp, 'hf.json')
    const args = ['-N', '--warmup', '3', '--runs', String(n), '--export-json', json, '--style', 'none']
    for (const [name, argv] of commands) args.push('-n', name, argv.join(' '))
    const p = spawn('hyperfine', args, { stdio: 'inherit' })
    const [code] = await once(p, 'exit')
    if (code !== 0) throw new Error(`hyperfine exited ${code}`)
    return JSON.parse(readFileSync(json, 'utf8')).results.map((r: any) => ({ name: r.command, mean: r.mean, sd: r.stddev, min: r.min, runs: r.times.length }))
  }
  const out: Timing[] = []
  for (const [name, [cmd, ...args]] of commands) {
    const t: number[] = []
    for (let i = 0; i < n + 3; i++) {
      const s = process.hrtime.bigint()
      await exec(cmd, args)
      if (i >= 3) t.push(Number(process.hrtime.bigint() - s) / 1e9)
    }
    const mean = t.reduce((a, b) => a + b, 0) / t.length
    out.push({ name, mean, sd: Math.sqrt(t.reduce((a, b) => a + (b - mean) ** 2, 0) / t.length), min: Math.min(...t), runs: t.length })
  }
  return out
}

/** Runs a command without blocking this process's event loop: the node under test lives here. */
async function exec (cmd: string, args: string[]): Promise<string> {
  const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  p.stderr.on('data', (d) => { err += d })
  const [code] = await once(p, 'exit')
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}`)
  return err
}

/** One timed run under /usr/bin/time: wall seconds and peak RSS (KiB) of the whole command. */
async function timed (argv: string[]): Promise<{ sec: number; rssKiB: number }> {
  const err = await exec('/usr/bin/time', ['-f', '%e %M', ...argv])
  const [sec, rss] = err.trim().split('\n').pop()!.split(' ').map(Number)
  return { sec, rssKiB: rss }
}

const small = join(tmp, 'small.bin')
writeFileSync(small, randomBytes(1024))
const ms = (s: number) => `${(s * 1000).toFixed(1)} ms`
const lines: string[] = []
const loadBefore = loadavg()[0]
const say = (l = '') => { lines.push(l); console.log(l) }

try {
  console.error('1. small round trip')
  const [curlSmall, cloudSmall] = await compare([
    ['curl script', [curlScript, url, small, join(tmp, 'small.curl')]],
    ['echo.cloud', [echoCloud, server, small, '-o', join(tmp, 'small.cloud')]],
  ], runs)
  console.error('3. start-up')
  const loadGot = join(tmp, 'load-got.mjs')
  writeFileSync(loadGot, `import ${JSON.stringify(import.meta.resolve('got'))}\n`)
  const [version, bare, withGot] = await compare([
    ['rrcloud --version', [rrcloud, '--version']],
    ['node -e 0', [process.execPath, '-e', '0']],
    ['node, loading got only', [process.execPath, loadGot]],
  ], runs)

  console.error(`2. ${bigBytes} byte round trip`)
  const big = join(tmp, 'big.bin')
  await writeRandom(big, bigBytes)
  const bigRes: Record<string, Array<{ sec: number; rssKiB: number }>> = { curl: [], client: [] }
  for (let i = 0; i < bigRuns; i++) {
    for (const who of ['curl', 'client'] as const) {
      const dest = join(tmp, `big.${who}`)
      // neither run pays for the other's dirty pages (2 GiB written per run: the node's copy and the download)
      spawnSync('sync')
      bigRes[who].push(await timed(who === 'curl' ? [curlScript, url, big, dest] : [echoCloud, server, big, '-o', dest]))
      if (statSync(dest).size !== bigBytes) throw new Error(`${who}: the result is not the size of the input`)
      await exec('cmp', [big, dest])
      rmSync(dest)
      dropTaskFiles()
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  const curlSec = med(bigRes.curl.map((r) => r.sec))
  const cloudSec = med(bigRes.client.map((r) => r.sec))
  const mibs = (s: number) => (bigBytes / 2 ** 20 / s).toFixed(1)
  const rss = Math.max(...bigRes.client.map((r) => r.rssKiB)) / 1024
  const ok = (b: boolean) => (b ? 'met' : '**missed**')

  say('# Client benchmark')
  say()
  say(`Command: \`node --import tsx bench/client.ts --runs ${runs} --big-mib ${opt['big-mib']} --big-runs ${bigRuns}\``)
  say(`Product: git ${rev}, built by bench/lib/build-product.sh; clients with RRCLOUD_MDNS=off.`)
  say(`Machine: ${cpus().length} × ${cpus()[0]?.model.trim()}, Node ${process.version}, ${spawnSync('curl', ['--version'], { encoding: 'utf8' }).stdout.split(' ').slice(0, 2).join(' ')}; ` +
    `timing with ${hasHyperfine ? spawnSync('hyperfine', ['--version'], { encoding: 'utf8' }).stdout.trim() : 'repeated runs of its own'}; node in the benchmark's process on 127.0.0.1, 2 slots; load average ${loadBefore.toFixed(1)} before, ${loadavg()[0].toFixed(1)} after (other work on the machine makes the figures noisy); ${new Date().toISOString().slice(0, 10)}.`)
  say()
  say('| what | curl / node | rrcloud client | ratio | goal |')
  say('| --- | --- | --- | --- | --- |')
  say(`| 1 KiB echo round trip (POST, poll, GET), mean ± sd of ${runs} | ${ms(curlSmall.mean)} ± ${ms(curlSmall.sd)} | ${ms(cloudSmall.mean)} ± ${ms(cloudSmall.sd)} | ${(cloudSmall.mean / curlSmall.mean).toFixed(2)}x the time | ≤ 1.5x: ${ok(cloudSmall.mean <= 1.5 * curlSmall.mean)} |`)
  say(`| ${opt['big-mib']} MiB echo round trip, median of ${bigRuns} | ${curlSec.toFixed(2)} s (${mibs(curlSec)} MiB/s) | ${cloudSec.toFixed(2)} s (${mibs(cloudSec)} MiB/s) | ${(curlSec / cloudSec).toFixed(2)}x the throughput | ≥ 0.8x: ${ok(curlSec / cloudSec >= 0.8)} |`)
  say(`| peak RSS during that round trip (max of ${bigRuns}) | curl script ${(Math.max(...bigRes.curl.map((r) => r.rssKiB)) / 1024).toFixed(0)} MiB | ${rss.toFixed(0)} MiB | | ≤ 150 MB: ${ok(rss * 2 ** 20 <= 150e6)} |`)
  say(`| \`rrcloud --version\` vs \`node -e 0\`, mean ± sd of ${runs} | ${ms(bare.mean)} ± ${ms(bare.sd)} | ${ms(version.mean)} ± ${ms(version.sd)} | ${(version.mean / bare.mean).toFixed(2)}x | ≤ 3x: ${ok(version.mean <= 3 * bare.mean)} |`)
  say()
  say(`Big runs (s / peak RSS MiB): curl ${bigRes.curl.map((r) => `${r.sec} / ${(r.rssKiB / 1024).toFixed(0)}`).join(', ')}; client ${bigRes.client.map((r) => `${r.sec} / ${(r.rssKiB / 1024).toFixed(0)}`).join(', ')}.`)
  say(`Fastest 1 KiB runs: curl ${ms(curlSmall.min)}, echo.cloud ${ms(cloudSmall.min)}.`)
  say()
  say('Where the 1 KiB time goes: starting Node at all (`node -e 0`) takes ' + `${ms(bare.mean)}, ${(bare.mean / curlSmall.mean).toFixed(2)}x the whole curl script; ` +
    `loading got alone (which the client no longer loads) would bring a bare Node to ${ms(withGot.mean)}. ` +
    'echo.cloud loads one bundle (dist/bundle), neither oclif nor got; the rest is the requests (POST, a long poll that ' +
    'answers when the task ends, the download) and the node running the task.')
  writeFileSync(opt.out!, lines.join('\n') + '\n', { flag: 'w' })
  console.error(`written to ${opt.out}`)
} finally {
  await node.close()
  rmSync(tmp, { recursive: true, force: true })
}
