// Discovery timings on a LAN of network namespaces (never on the host's interfaces). Run as root:
//   node --import tsx bench/discovery.ts [--trials 10]
// Prints a markdown report: advertiser start → seen by a fresh discover(), how long one discover()
// takes (it returns once answers have settled), SIGKILL → gone from a running browser, load change →
// update seen by a running browser.
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { canUseNetns, createLan, lines, type Lan, type LanHost } from '../test/helpers/netns.js'

const { values: o } = parseArgs({ options: { trials: { type: 'string', default: '10' } } })
const trials = Number(o.trials)
const root = fileURLToPath(new URL('..', import.meta.url))
type Line = Record<string, any> & { event: string, t: number }

if (!canUseNetns()) {
  console.error('needs root and iproute2: the benchmark runs in network namespaces')
  process.exit(1)
}

function run (lan: Lan, host: LanHost, script: string, args: string[]) {
  const child = lan.spawn(host, [process.execPath, '--import', 'tsx', `test/fixtures/${script}`, ...args], { cwd: root })
  return { child, out: lines<Line>(child) }
}

const stats = (xs: number[]): string => {
  const s = [...xs].sort((a, b) => a - b)
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))]
  return `${s.length} | ${s[0]} | ${q(0.5)} | ${q(0.9)} | ${s[s.length - 1]}`
}

const lan = await createLan(4)
let loopRuns: Array<Line & { startedAt: number, names: string[] }> = []
const result = { visible: [] as number[], visibleSpawn: [] as number[], announce: [] as number[], gone: [] as number[], update: [] as number[] }
try {
  const [h1, h2, h3, hb] = lan.hosts
  // two more nodes on the LAN, so that answers and refresh queries are not alone
  for (const [i, h] of [h2, h3].entries()) {
    const bg = run(lan, h, 'advertise.ts', ['--name', `bg${i}`, '--id', `bg-${i}`, '--host', `bg${i}`])
    await bg.out.wait((l) => l.event === 'ready', 10_000, 'background node')
  }
  const loop = run(lan, hb, 'browse.ts', ['--loop', '--timeout', '400'])
  loopRuns = loop.out.all as Array<Line & { startedAt: number, names: string[] }>
  const watch = run(lan, hb, 'browse.ts', [])
  await watch.out.wait((l) => l.event === 'ready', 10_000, 'browser')
  await loop.out.wait((l) => l.event === 'names', 10_000, 'discover loop')

  for (let i = 0; i < trials; i++) {
    const spawnedAt = Date.now()
    const a = run(lan, h1, 'advertise.ts', ['--name', 'bench', '--id', `bench-${i}`, '--host', 'bench'])
    const start = await a.out.wait((l) => l.event === 'start', 10_000, 'start')
    const ready = await a.out.wait((l) => l.event === 'ready', 10_000, 'ready')
    const name = ready.name as string
    const seen = await loop.out.wait((l) => l.event === 'names' && l.startedAt >= start.t && l.names.includes(name), 10_000, 'in discover()')
    result.announce.push(ready.t - start.t)
    result.visible.push(seen.t - start.t)
    result.visibleSpawn.push(seen.t - spawnedAt)
    await watch.out.wait((l) => l.event === 'up' && l.peer.name === name, 5000, 'up')

    // load changes at random moments, so that some fall inside the rate limit
    for (let k = 1; k <= 3; k++) {
      await sleep(200 + Math.random() * 1300)
      const load = i + k / 10
      a.child.stdin!.write(`load ${load}\n`)
      const sent = await a.out.wait((l) => l.event === 'update' && l.partial.load === load, 2000, 'update sent')
      const got = await watch.out.wait((l) => l.event === 'update' && l.peer.name === name && l.peer.record.load === load, 5000, 'update seen')
      result.update.push(got.t - sent.t)
    }

    await sleep(Math.random() * 2000)
    const killedAt = Date.now()
    a.child.kill('SIGKILL')
    const down = await watch.out.wait((l) => l.event === 'down' && l.peer.name === name, 10_000, 'down')
    result.gone.push(down.t - killedAt)
    process.stderr.write(`trial ${i + 1}/${trials}: visible ${result.visible.at(-1)} ms, gone ${result.gone.at(-1)} ms\n`)
  }
} finally {
  await lan.close()
}
// every discover() of the loop that found the two background nodes (and maybe the one under test)
const calls = loopRuns.filter((l) => l.event === 'names')
const looks = calls.filter((l) => l.names.filter((n) => n.startsWith('bg')).length === 2).map((l) => l.t - l.startedAt)
const misses = calls.length - looks.length

console.log(`| measure (ms) | n | min | p50 | p90 | max |
|---|---|---|---|---|---|
| createAdvertiser() → announced (probing included) | ${stats(result.announce)} |
| createAdvertiser() → in the result of a discover() started after it | ${stats(result.visible)} |
| one discover({ timeoutMs: 400 }) with 2–3 nodes answering, call → result | ${stats(looks)} |
| process spawn (node + tsx start-up) → in a discover() result | ${stats(result.visibleSpawn)} |
| SIGKILL → 'down' in a running browser | ${stats(result.gone)} |
| update({ load }) → 'update' in a running browser | ${stats(result.update)} |

discover() calls that missed a background node: ${misses} of ${calls.length}`)
