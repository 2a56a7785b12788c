// A pipeline against the same three *.cloud commands run one after the other, on a LAN of network
// namespaces (never on the host's interfaces). Run as root, after `npm run build`:
//   node --import tsx bench/pipeline.ts [--rounds 3] [--fn 200] [--client-mbit 0] [--out FILE]
// Three nodes, each offering one service (`--offer`): alpha openscad, beta slic3r, gamma echo; a
// client on a fourth host. Each round renders a ball (sphere r≈40 mm, `--fn` facets around; a new
// model each time, so no node holds a result), slices it and hands the G-code back through echo:
//   cloud     openscad.cloud --s=alpha (STL down), slic3r.cloud --s=beta (STL up, G-code down),
//             echo.cloud --s=gamma (G-code up, G-code down)
//   pipeline  rrcloud pipe --s=alpha openscad -- slic3r -- echo -o FILE (the G-code down, once)
// Wall time of the client from its first process start to the last exit; bytes through the
// client: its interface's counters (both ways, every request and reply). `--client-mbit N` limits
// the client's link to N Mbit/s each way (a laptop on Wi-Fi beside wired nodes).
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { execFileSync } from 'node:child_process'
import { canUseNetns } from '../test/helpers/netns.js'
import { createNodeLan, root, until, type NodeLan, type Ran } from '../test/helpers/lan.js'

const { values: o } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    fn: { type: 'string', default: '200' },
    'client-mbit': { type: 'string', default: '0' },
    out: { type: 'string' },
    // print the nodes' log lines of each pipeline (where its time went)
    verbose: { type: 'boolean', default: false },
  },
})
const ROUNDS = Number(o.rounds)
const MBIT = Number(o['client-mbit'])

interface Run {
  mode: 'cloud' | 'pipeline'; ms: number; bytes: number; out: number; intermediate: number; inputs: number; stl?: number; gcode?: number
  /** the tools' own time: each task's end minus its creation, as the nodes recorded them */
  toolMs: number
}

const counters = async (nl: NodeLan) => {
  const read = async (k: string) => Number(await nl.lan.run(nl.client, ['cat', `/sys/class/net/veth0/statistics/${k}`]))
  return (await read('rx_bytes')) + (await read('tx_bytes'))
}
const ok = (r: Ran, what: string) => { if (r.code !== 0) throw new Error(`${what}: exit ${r.code}: ${r.stderr}`) }
const size = (f: string) => statSync(f).size
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }
const mib = (n: number) => `${(n / 2 ** 20).toFixed(2)} MiB`

async function main () {
  if (!canUseNetns()) throw new Error('needs root and iproute2: the bench runs in network namespaces')
  const nl = await createNodeLan(3, 1)
  try {
    const node = (i: number, name: string, offer: string) => nl.startNode(nl.hosts[i], { name, slots: 1, testServices: false, args: ['--offer', offer] })
    const [alpha, beta, gamma] = await Promise.all([node(0, 'alpha', 'openscad'), node(1, 'beta', 'slic3r'), node(2, 'gamma', 'echo')])
    await until(async () => {
      const ids = ((await nl.http(`${alpha.url}/api/v1/peers`)).body as any[]).map((p) => p.record.id)
      return ids.includes(beta.id) && ids.includes(gamma.id)
    }, 15_000, 'alpha to see beta and gamma')
    if (MBIT > 0) {
      // the client's way out, and the bridge's way to the client
      const tbf = ['root', 'tbf', 'rate', `${MBIT}mbit`, 'burst', '64kb', 'latency', '200ms']
      await nl.lan.run(nl.client, ['tc', 'qdisc', 'add', 'dev', 'veth0', ...tbf])
      execFileSync('ip', ['netns', 'exec', nl.lan.bridgeNs, 'tc', 'qdisc', 'add', 'dev', `p${nl.lan.hosts.indexOf(nl.client) + 1}`, ...tbf])
    }
    const work = join(nl.dir, 'work')
    mkdirSync(work)
    copyFileSync(join(root, 'test', 'fixtures', 'slic3r.ini'), join(work, 'slic3r.ini'))
    const env = { RRCLOUD_MDNS: 'off' }
    const at = (n: { host: { address: string } }) => `--s=${n.host.address}`
    const run = (argv: string[], bin?: string) => nl.rrcloud(argv, { cwd: work, env, timeoutMs: 600_000, ...(bin ? { bin } : {}) })
    const model = (tag: string, k: number) => {
      writeFileSync(join(work, `${tag}.scad`), `sphere(r = ${(40 + k * 0.001).toFixed(3)}, $fn = ${o.fn});\n`)
      return `${tag}.scad`
    }
    const runs: Run[] = []
    let k = 0
    for (let round = 0; round < ROUNDS; round++) {
      // alternate which goes first: a busy machine slows one as much as the other
      for (const mode of round % 2 ? ['pipeline', 'cloud'] as const : ['cloud', 'pipeline'] as const) {
        const tag = `${mode}-${round}`
        const scad = model(tag, ++k)
        const before = await counters(nl)
        const t0 = Date.now()
        if (mode === 'cloud') {
          ok(await run([at(alpha), '--no-cache', scad, `-o${tag}.stl`], 'openscad.cloud'), 'openscad.cloud')
          ok(await run([at(beta), '--no-cache', '--load=slic3r.ini', `${tag}.stl`, `--output=${tag}.gcode`], 'slic3r.cloud'), 'slic3r.cloud')
          ok(await run([at(gamma), '--no-cache', `${tag}.gcode`, `-o${tag}.out.gcode`], 'echo.cloud'), 'echo.cloud')
        } else {
          ok(await run(['pipe', at(alpha), '--no-cache', '-o', `${tag}.out.gcode`, 'openscad', scad, '--', 'slic3r', '--load=slic3r.ini', '--', 'echo']), 'rrcloud pipe')
        }
        const ms = Date.now() - t0
        let toolMs = 0
        for (const n of [alpha, beta, gamma]) {
          for (const t of (await nl.http(`${n.url}/api/v1/tasks`)).body as Array<{ ctime: number, etime?: number }>) {
            if (t.ctime * 1000 >= t0 - 1000 && t.etime) toolMs += (t.etime - t.ctime) * 1000
          }
        }
        const bytes = (await counters(nl)) - before
        const out = size(join(work, `${tag}.out.gcode`))
        const inputs = size(join(work, scad)) + size(join(work, 'slic3r.ini'))
        const p = mode === 'pipeline' ? ((await nl.http(`${alpha.url}/api/v1/pipelines`)).body as any[]).at(-1) : undefined
        const files = mode === 'cloud' ? { stl: size(join(work, `${tag}.stl`)), gcode: size(join(work, `${tag}.gcode`)) } : {}
        const intermediate = files.stl !== undefined ? 2 * (files.stl + files.gcode!) : 0
        if (p && p.status !== 'complete') throw new Error(`pipeline ${p.id}: ${p.status} ${p.error}`)
        if (!/^G1 /m.test(readFileSync(join(work, `${tag}.out.gcode`), 'utf8'))) throw new Error(`${tag}: no G-code`)
        runs.push({ mode, ms, bytes, out, intermediate, inputs, toolMs, ...files })
        process.stderr.write(`${tag}: ${ms} ms (tools ${Math.round(toolMs)} ms), ${mib(bytes)} through the client\n`)
        if (o.verbose) {
          for (const n of [alpha, beta, gamma]) {
            const lines = n.out.all.filter((l) => Date.parse(l.slice(0, 24)) >= t0)
            process.stderr.write(lines.map((l) => `  ${n.name} ${l}\n`).join(''))
          }
        }
      }
    }
    const of = (m: Run['mode']) => runs.filter((r) => r.mode === m)
    const stats = (m: Run['mode']) => ({ ms: median(of(m).map((r) => r.ms)), bytes: median(of(m).map((r) => r.bytes)), rest: median(of(m).map((r) => r.ms - r.toolMs)) })
    const cloud = stats('cloud')
    const pipe = stats('pipeline')
    // the tools take as long either way; on a shared machine their time swings from run to run
    const tools = median(runs.map((r) => r.toolMs))
    const ratios = of('pipeline').map((r, i) => r.ms / of('cloud')[i].ms)
    const sample = of('cloud')[0]
    const report = [
      `## Pipeline vs three *.cloud commands (fn ${o.fn}, client link ${MBIT > 0 ? `${MBIT} Mbit/s each way` : 'unlimited (veth)'})`,
      '',
      `\`node --import tsx bench/pipeline.ts --rounds ${ROUNDS} --fn ${o.fn}${MBIT > 0 ? ` --client-mbit ${MBIT}` : ''}\`, ${new Date().toISOString().slice(0, 16)}Z, load average before ${loadavg()[0].toFixed(2)}`,
      '',
      `Per round: STL ${mib(sample.stl!)} and G-code ${mib(sample.gcode!)} in between, the G-code back at the end (${mib(sample.out)}); inputs (scad + ini) ${sample.inputs} bytes. ` +
      'The *.cloud way moves each intermediate file twice through the client (down, then up to the next node).',
      '',
      '| round | mode | wall | tools (tasks created → ended) | the rest | through the client | of which intermediate outputs |',
      '|---|---|---|---|---|---|---|',
      ...runs.map((r, i) => `| ${Math.floor(i / 2) + 1} | ${r.mode} | ${(r.ms / 1000).toFixed(2)} s | ${(r.toolMs / 1000).toFixed(2)} s | ${((r.ms - r.toolMs) / 1000).toFixed(2)} s | ${mib(r.bytes)} | ${r.mode === 'cloud' ? mib(r.intermediate) : '0 (final output ' + mib(r.out) + ', the rest requests and replies)'} |`),
      '',
      `Medians: cloud ${(cloud.ms / 1000).toFixed(2)} s and ${mib(cloud.bytes)}; pipeline ${(pipe.ms / 1000).toFixed(2)} s and ${mib(pipe.bytes)}: ` +
      `**${(pipe.ms / cloud.ms).toFixed(2)}x the time** (per round ${ratios.map((r) => r.toFixed(2)).join(', ')}), ${(pipe.bytes / cloud.bytes).toFixed(2)}x the bytes. ` +
      `Time beside the tools' own (the rest): cloud ${(cloud.rest / 1000).toFixed(2)} s, pipeline ${(pipe.rest / 1000).toFixed(2)} s (${(pipe.rest / cloud.rest).toFixed(2)}x); ` +
      `with the tools' median time added to each: ${((tools + pipe.rest) / (tools + cloud.rest)).toFixed(2)}x.`,
      '',
    ].join('\n')
    process.stdout.write(report + '\n')
    if (o.out) writeFileSync(o.out, report + '\n', { flag: 'a' })
  } finally {
    await nl.close()
  }
}

await main()
