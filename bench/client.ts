// Client benchmark, side by side in one run against one node (in this process, on 127.0.0.1, mDNS
// off, tools in its sandbox as `rrcloud node` runs them), in interleaved rounds (each round runs
// every command once, in a rotating order) so that a busy machine weighs on all of them alike:
//  1. echo.cloud on a 1 KiB file against a curl script doing the same POST, poll and GET, and
//     `node -e 0`: goal (echo.cloud − node -e 0) ≤ 0.5 × the curl script;
//  2. real work relayed to the node (openscad 20 mm cube, slic3r cube; --no-cache, so the tool
//     runs each time) against the same tool run here: goal relayed − local ≤ node -e 0 + 0.5 × curl;
//     the node's log splits each relayed run into client start and upload, task start, tool, and
//     wake-up, download and exit;
//  3. `rrcloud --version` against `node -e 0` (start-up cost);
//  4. a 1 GiB echo round trip (upload, run, download) with both: time, throughput, client peak RSS.
// The client is the committed product (git HEAD), built into a temp folder by bench/lib/build-product.sh
// (tsc and the client bundle), run by its *.cloud names as a user runs them. Clients get
// RRCLOUD_MDNS=off: nothing is asked on the LAN.
//
// With --against REV, the product at REV (built the same way) runs its echo.cloud, openscad.cloud and
// slic3r.cloud in the same rounds: before and after, side by side.
//
//   node --import tsx bench/client.ts [--runs 30] [--big-mib 1024] [--big-runs 3] [--against REV] [--out bench/results/client.md]
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
    against: { type: 'string' },
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

// every client started from here stays off mDNS
process.env.RRCLOUD_MDNS = 'off'
const tmp = mkdtempSync(join(tmpdir(), 'rrcloud-bench-client-'))
console.error('building the product (git HEAD)')
const build = spawnSync(join(root, 'bench', 'lib', 'build-product.sh'), [join(tmp, 'product')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
if (build.status !== 0) throw new Error(`bench/lib/build-product.sh failed (${build.status})`)
const rrcloud = build.stdout.trim().split('\n').pop()!
const cloudOf = (bin: string) => (name: string) => {
  const p = join(bin, '..', `${name}.cloud`)
  if (!existsSync(p)) throw new Error(`${p}: the build has no ${name}.cloud`)
  return p
}
const cloud = cloudOf(rrcloud)
const shortRev = (rev: string) => spawnSync('git', ['-C', root, 'rev-parse', '--short', rev], { encoding: 'utf8' }).stdout.trim()
const rev = shortRev('HEAD')
let before: { rev: string; cloud: (name: string) => string } | undefined
if (opt.against) {
  console.error(`building the product at ${opt.against}`)
  const b = spawnSync(join(root, 'bench', 'lib', 'build-product.sh'), [join(tmp, 'against'), opt.against], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
  if (b.status !== 0) throw new Error(`bench/lib/build-product.sh ${opt.against} failed (${b.status})`)
  before = { rev: shortRev(opt.against), cloud: cloudOf(b.stdout.trim().split('\n').pop()!) }
}
const dataDir = join(tmp, 'data')
/** the node's log lines, with when they were written (ms, performance.now()) */
const nodeLog: Array<{ t: number; line: string }> = []
const node = await startNode({ port: 0, host: '127.0.0.1', dataDir, slots: 2, mdns: false, log: (line) => nodeLog.push({ t: performance.now(), line }) })
const url = node.url
const server = `--s=127.0.0.1:${node.port}`
const curlScript = join(tmp, 'curl-roundtrip.sh')
writeFileSync(curlScript, CURL, { mode: 0o755 })

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
  for (const d of ['in', 'out']) for (const f of readdirSync(join(dataDir, 'tasks', d))) rmSync(join(dataDir, 'tasks', d, f), { force: true, recursive: true })
}

/** Runs a command without blocking this process's event loop (the node under test lives here); its start and end (performance.now()). */
async function exec (argv: string[]): Promise<{ start: number; end: number; stderr: string }> {
  const start = performance.now()
  const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  p.stderr.on('data', (d) => { stderr += d })
  const [code] = await once(p, 'exit')
  const end = performance.now()
  if (code !== 0) throw new Error(`${argv.join(' ')} exited ${code}: ${stderr}`)
  return { start, end, stderr }
}

interface Run { ms: number; start: number; end: number }

/** Every command once per round, in a rotating order, after a warm-up round; each command's runs in round order. */
async function rounds (commands: Record<string, string[]>, n: number): Promise<Record<string, Run[]>> {
  const names = Object.keys(commands)
  const out: Record<string, Run[]> = Object.fromEntries(names.map((k) => [k, []]))
  for (const k of names) await exec(commands[k])
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < names.length; i++) {
      const k = names[(i + r) % names.length]
      const { start, end } = await exec(commands[k])
      out[k].push({ ms: end - start, start, end })
    }
  }
  return out
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b)
  const at = (s.length - 1) * q
  return s[Math.floor(at)] + (s[Math.ceil(at)] - s[Math.floor(at)]) * (at - Math.floor(at))
}
const median = (xs: number[]) => quantile(xs, 0.5)
const ms = (x: number) => `${x.toFixed(1)} ms`
/** `median (p25–p75)` */
const spread = (xs: number[], f = ms) => `${f(median(xs))} (${f(quantile(xs, 0.25))}–${f(quantile(xs, 0.75))})`
const times = (rs: Run[]) => rs.map((r) => r.ms)

/**
 * A relayed run split by the node's log: client start and upload (until the task is queued), task
 * start (queued → busy: the tool started), the tool in its sandbox (busy → complete), then the
 * client's wake-up, download and exit.
 */
function phases (rs: Run[]): Record<string, number[]> {
  const out: Record<string, number[]> = { 'start, upload': [], 'task start': [], 'tool (sandboxed)': [], 'wake-up, download, exit': [] }
  for (const r of rs) {
    const lines = nodeLog.filter((l) => l.t >= r.start && l.t <= r.end)
    const at = (what: RegExp) => lines.find((l) => what.test(l.line))?.t
    const [queued, busy, complete] = [at(/^task \S+ queued/), at(/^task \S+ busy/), at(/^task \S+ complete/)]
    if (queued === undefined || busy === undefined || complete === undefined) continue
    out['start, upload'].push(queued - r.start)
    out['task start'].push(busy - queued)
    out['tool (sandboxed)'].push(complete - busy)
    out['wake-up, download, exit'].push(r.end - complete)
  }
  return out
}

const small = join(tmp, 'small.bin')
writeFileSync(small, randomBytes(1024))
writeFileSync(join(tmp, 'cube.scad'), 'cube(20);\n')
writeFileSync(join(tmp, 'cfg.ini'), readFileSync(join(root, 'test', 'fixtures', 'slic3r.ini')))
const stl = join(tmp, 'cube.stl')
if (spawnSync('openscad', ['-o', stl, join(tmp, 'cube.scad')], { stdio: 'ignore' }).status !== 0) throw new Error('openscad is needed: it makes the cube')
const lines: string[] = []
const MARK = '<!-- analysis -->'
const loadBefore = loadavg()[0]
const say = (l = '') => { lines.push(l); console.log(l) }
const t = (name: string) => join(tmp, name)

try {
  console.error(`1–3. ${runs} interleaved rounds: node -e 0, curl script, echo.cloud, rrcloud --version, openscad and slic3r here and relayed`)
  const r = await rounds({
    node: [process.execPath, '-e', '0'],
    curl: [curlScript, url, small, t('small.curl')],
    echo: [cloud('echo'), server, small, '-o', t('small.cloud')],
    version: [rrcloud, '--version'],
    openscadHere: ['openscad', t('cube.scad'), '-o', t('here.stl')],
    openscadRelayed: [cloud('openscad'), server, '--no-cache', t('cube.scad'), '-o', t('relayed.stl')],
    slic3rHere: ['slic3r', '--no-gui', `--load=${t('cfg.ini')}`, stl, `--output=${t('here.gcode')}`],
    slic3rRelayed: [cloud('slic3r'), server, '--no-cache', `--load=${t('cfg.ini')}`, stl, '-o', t('relayed.gcode')],
    ...(before
      ? {
          echoBefore: [before.cloud('echo'), server, small, '-o', t('small.before')],
          openscadRelayedBefore: [before.cloud('openscad'), server, '--no-cache', t('cube.scad'), '-o', t('relayed-before.stl')],
          slic3rRelayedBefore: [before.cloud('slic3r'), server, '--no-cache', `--load=${t('cfg.ini')}`, stl, '-o', t('relayed-before.gcode')],
        }
      : {}),
  }, runs)
  if (!readFileSync(t('small.cloud')).equals(readFileSync(small))) throw new Error('echo.cloud: the result is not the input')
  if (!readFileSync(t('relayed.stl')).equals(readFileSync(t('here.stl')))) throw new Error('openscad: the relayed STL differs from the one made here')
  if (statSync(t('relayed.gcode')).size === 0) throw new Error('slic3r: the relayed G-code is empty')
  const perRound = (f: (i: number) => number) => r.node.map((_, i) => f(i))
  const echoOver = perRound((i) => r.echo[i].ms - r.node[i].ms)
  const goal1 = perRound((i) => echoOver[i] / r.curl[i].ms)
  const relay = (tool: 'openscad' | 'slic3r', which = 'Relayed') => {
    const added = perRound((i) => r[`${tool}${which}`][i].ms - r[`${tool}Here`][i].ms)
    return { added, goal: perRound((i) => (added[i] - r.node[i].ms) / r.curl[i].ms), phases: phases(r[`${tool}${which}`]) }
  }
  const relays = { openscad: relay('openscad'), slic3r: relay('slic3r') }

  console.error(`4. ${bigBytes} byte round trip`)
  const big = join(tmp, 'big.bin')
  await writeRandom(big, bigBytes)
  const bigRes: Record<string, Array<{ sec: number; rssKiB: number }>> = { curl: [], client: [] }
  for (let i = 0; i < bigRuns; i++) {
    for (const who of ['curl', 'client'] as const) {
      const dest = join(tmp, `big.${who}`)
      // neither run pays for the other's dirty pages (2 GiB written per run: the node's copy and the download)
      spawnSync('sync')
      const argv = who === 'curl' ? [curlScript, url, big, dest] : [cloud('echo'), server, big, '-o', dest]
      const { stderr } = await exec(['/usr/bin/time', '-f', '%e %M', ...argv])
      const [sec, rssKiB] = stderr.trim().split('\n').pop()!.split(' ').map(Number)
      bigRes[who].push({ sec, rssKiB })
      if (statSync(dest).size !== bigBytes) throw new Error(`${who}: the result is not the size of the input`)
      await exec(['cmp', big, dest])
      rmSync(dest)
      dropTaskFiles()
    }
  }
  const curlSec = median(bigRes.curl.map((x) => x.sec))
  const cloudSec = median(bigRes.client.map((x) => x.sec))
  const mibs = (s: number) => (bigBytes / 2 ** 20 / s).toFixed(1)
  const rss = Math.max(...bigRes.client.map((x) => x.rssKiB)) / 1024
  const ok = (b: boolean) => (b ? 'met' : '**missed**')
  const x = (v: number) => `${v.toFixed(2)}x`

  say('# Client benchmark')
  say()
  say(`Command: \`node --import tsx bench/client.ts --runs ${runs} --big-mib ${opt['big-mib']} --big-runs ${bigRuns}${opt.against ? ` --against ${opt.against}` : ''}\``)
  say(`Product: git ${rev}, built by bench/lib/build-product.sh; clients with RRCLOUD_MDNS=off and --s=127.0.0.1:PORT (no node on 127.0.0.1:4468).`)
  say(`Machine: ${cpus().length} × ${cpus()[0]?.model.trim()}, Node ${process.version}, ${spawnSync('curl', ['--version'], { encoding: 'utf8' }).stdout.split(' ').slice(0, 2).join(' ')}; ` +
    `node in the benchmark's process on 127.0.0.1 (startNode: 2 slots, mDNS off, sandbox auto, nice 0); ${runs} interleaved rounds after one warm-up round; ` +
    `load average ${loadBefore.toFixed(1)} before, ${loadavg()[0].toFixed(1)} after (other work on the machine makes the figures noisy); ${new Date().toISOString().slice(0, 10)}.`)
  say()
  say('Each figure: median (p25–p75) over the rounds; a goal figure is computed per round, then its median taken.')
  say()
  say('| what | median (p25–p75) |')
  say('| --- | --- |')
  say(`| \`node -e 0\` | ${spread(times(r.node))} |`)
  say(`| curl script, 1 KiB echo (POST, poll, GET) | ${spread(times(r.curl))} |`)
  say(`| echo.cloud, 1 KiB | ${spread(times(r.echo))} |`)
  if (before) say(`| echo.cloud, 1 KiB, at ${before.rev} | ${spread(times(r.echoBefore))} |`)
  say(`| \`rrcloud --version\` | ${spread(times(r.version))} |`)
  say(`| openscad 20 mm cube here / relayed (\`--no-cache\`) | ${spread(times(r.openscadHere))} / ${spread(times(r.openscadRelayed))} |`)
  say(`| slic3r cube here / relayed (\`--no-cache\`) | ${spread(times(r.slic3rHere))} / ${spread(times(r.slic3rRelayed))} |`)
  if (before) say(`| openscad / slic3r relayed at ${before.rev} | ${spread(times(r.openscadRelayedBefore))} / ${spread(times(r.slic3rRelayedBefore))} |`)
  say()
  say('| goal | per round: median (p25–p75) | goal | met |')
  say('| --- | --- | --- | --- |')
  say(`| (echo.cloud − node -e 0) / curl script | ${spread(goal1, x)}; echo.cloud − node -e 0: ${spread(echoOver)} | ≤ 0.5x | ${ok(median(goal1) <= 0.5)} |`)
  for (const [tool, v] of Object.entries(relays)) {
    say(`| ${tool}: (relayed − here − node -e 0) / curl script | ${spread(v.goal, x)}; relayed − here: ${spread(v.added)} | ≤ 0.5x | ${ok(median(v.goal) <= 0.5)} |`)
  }
  if (before) {
    const old = perRound((i) => (r.echoBefore[i].ms - r.node[i].ms) / r.curl[i].ms)
    say(`| at ${before.rev}: (echo.cloud − node -e 0) / curl script | ${spread(old, x)}; echo.cloud − node -e 0: ${spread(perRound((i) => r.echoBefore[i].ms - r.node[i].ms))} | ≤ 0.5x | ${ok(median(old) <= 0.5)} |`)
    for (const tool of ['openscad', 'slic3r'] as const) {
      const v = relay(tool, 'RelayedBefore')
      say(`| at ${before.rev}: ${tool}: (relayed − here − node -e 0) / curl script | ${spread(v.goal, x)}; relayed − here: ${spread(v.added)} | ≤ 0.5x | ${ok(median(v.goal) <= 0.5)} |`)
    }
  }
  say(`| \`rrcloud --version\` / \`node -e 0\` | ${spread(perRound((i) => r.version[i].ms / r.node[i].ms), x)} | ≤ 3x | ${ok(median(perRound((i) => r.version[i].ms / r.node[i].ms)) <= 3)} |`)
  say()
  say('A relayed run, by the node\'s log (median (p25–p75) of the rounds): client start and upload (until the node has queued the task), task start ' +
    '(queued → busy: the spawn helper has started the tool in its sandbox), the tool (busy → complete: in bwrap, output renamed, recorded), ' +
    'then wake-up of the long poll, download and exit.')
  say()
  say('| tool | ' + Object.keys(relays.openscad.phases).join(' | ') + ' |')
  say('| --- |' + ' --- |'.repeat(Object.keys(relays.openscad.phases).length))
  for (const [tool, v] of Object.entries(relays)) say(`| ${tool} | ${Object.values(v.phases).map((p) => p.length ? spread(p) : 'n/a').join(' | ')} |`)
  say()
  say('| what | curl | rrcloud client | ratio | goal |')
  say('| --- | --- | --- | --- | --- |')
  say(`| ${opt['big-mib']} MiB echo round trip, median of ${bigRuns} | ${curlSec.toFixed(2)} s (${mibs(curlSec)} MiB/s) | ${cloudSec.toFixed(2)} s (${mibs(cloudSec)} MiB/s) | ${(curlSec / cloudSec).toFixed(2)}x the throughput | ≥ 0.8x: ${ok(curlSec / cloudSec >= 0.8)} |`)
  say(`| peak RSS during that round trip (max of ${bigRuns}) | curl script ${(Math.max(...bigRes.curl.map((b) => b.rssKiB)) / 1024).toFixed(0)} MiB | ${rss.toFixed(0)} MiB | | ≤ 150 MB: ${ok(rss * 2 ** 20 <= 150e6)} |`)
  say()
  say(`Big runs (s / peak RSS MiB): curl ${bigRes.curl.map((b) => `${b.sec} / ${(b.rssKiB / 1024).toFixed(0)}`).join(', ')}; client ${bigRes.client.map((b) => `${b.sec} / ${(b.rssKiB / 1024).toFixed(0)}`).join(', ')}.`)
  // what follows the marker (the analysis of a run, written by hand) is kept
  const kept = existsSync(opt.out!) ? readFileSync(opt.out!, 'utf8').split(MARK)[1] : undefined
  writeFileSync(opt.out!, lines.join('\n') + '\n' + (kept === undefined ? '' : `\n${MARK}${kept}`))
  console.error(`written to ${opt.out}`)
} finally {
  await node.close()
  rmSync(tmp, { recursive: true, force: true })
}
