// Streaming G-code against the serial wire's own limit: the simulated Marlin
// (test/fixtures/marlin-sim.mjs) takes as long to receive each byte as a wire at the given baud
// rate would (10 bits a byte, replies too), queues BUFSIZE 4 commands and answers with
// ADVANCED_OK. rrcloud's printer component and printcore (Printrun) stream the same sliced sphere
// (many short segments) in one run, side by side.
//
// The wire limit is the file's commands as numbered lines (`N<n> <command>*<checksum>\n`, each
// once) divided by baud/10 bytes a second: no host can deliver faster. Lines per second are
// measured on the simulator's wire clock from the first to the last accepted file command.
// Delivery is checked by comparing the simulator's log of accepted commands with the file.
//
//   node --import tsx bench/printer-wire.ts [--rounds 3] [--baud 115200,250000] [--corrupt 0,0.01]
//                                           [--radius 8] [--fn 48] [--file F.gcode] [--latency-us 0]
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createPrinter } from '../src/executors/printer/printer.js'
import { numberedLine } from '../src/executors/printer/gcode.js'
import { startSimPty, statsOf, type SimPty } from '../test/helpers/pty.js'
import { compareDelivery, expectedCommands, printedCommands, sliceSphere, type Delivery } from '../test/helpers/sliced.js'

const { values: opt } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    baud: { type: 'string', default: '115200,250000' },
    corrupt: { type: 'string', default: '0,0.01' },
    radius: { type: 'string', default: '6' },
    fn: { type: 'string', default: '40' },
    file: { type: 'string' },
    'latency-us': { type: 'string', default: '0' },
    tools: { type: 'string', default: 'rrcloud,printcore' },
  },
})

type Tool = 'rrcloud' | 'printcore'
interface Run {
  tool: Tool, baud: number, corrupt: number, round: number
  lines: number, seconds: number, lps: number, limit: number
  delivery: Delivery, resends: number, maxHeld: number, wireBusy: number, finished: boolean
}

// printcore gets this long (several times the wire time) before it counts as stuck: see below
async function streamWith (tool: Tool, sim: SimPty, file: string, baud: number, limitMs: number): Promise<boolean> {
  if (tool === 'rrcloud') {
    const printer = createPrinter({ name: 'bench', path: sim.path, baudRate: baud })
    try {
      await printer.connect()
      await printer.print(file)
    } finally {
      await printer.close()
    }
    return true
  }
  // printcore answers each resend request, stale ones included, and takes the `ok` that follows
  // one as leave to send another line: on a real-speed wire its lines in flight can pile up
  // until it only sends the same lines again and again. It is stopped then, and reported so.
  return await new Promise<boolean>((resolve, reject) => {
    const child = spawn('printcore', ['-b', String(baud), sim.path, file], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    let stuck = false
    child.stderr.on('data', (d) => { stderr += String(d) })
    const timer = setTimeout(() => { stuck = true; child.kill('SIGKILL') }, limitMs)
    child.once('error', reject)
    child.once('exit', (code) => {
      clearTimeout(timer)
      if (stuck) resolve(false)
      else code === 0 ? resolve(true) : reject(new Error(`printcore exited with ${code}: ${stderr.slice(-500)}`))
    })
  })
}

/** lines per second a wire of this speed carries when it carries nothing but the file's numbered lines */
function wireLimit (expected: string[], baud: number): number {
  const bytes = expected.reduce((sum, c, i) => sum + numberedLine(i + 1, c).length + 1, 0)
  return expected.length / (bytes * 10 / baud)
}

async function measure (tool: Tool, file: string, expected: string[], baud: number, corrupt: number, round: number): Promise<Run> {
  const args = ['--baud', String(baud), '--advanced-ok', '--latency-us', opt['latency-us']]
  if (corrupt > 0) args.push('--corrupt', String(corrupt), '--seed', String(round + 1))
  const sim = await startSimPty(args)
  try {
    const wireSeconds = expected.length / wireLimit(expected, baud)
    const finished = await streamWith(tool, sim, file, baud, Math.max(60, 8 * wireSeconds) * 1000)
    await sim.stop({ keepDir: true }) // the simulator writes its stats as it stops
    const stats = await statsOf(sim)
    const received = printedCommands(sim.log())
    const seconds = (stats.lastAt - stats.firstAt) / 1000
    return {
      tool, baud, corrupt, round,
      lines: received.length,
      seconds,
      lps: received.length / seconds,
      limit: wireLimit(expected, baud),
      delivery: compareDelivery(expected, received),
      resends: stats.errors,
      maxHeld: stats.maxHeld,
      wireBusy: stats.bytes * 10 / baud / seconds,
      finished,
    }
  } finally {
    await sim.stop()
    rmSync(sim.dir, { recursive: true, force: true })
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const ok = (d: Delivery) => d.missing === 0 && d.doubled === 0 && d.inOrder
const list = (xs: Array<string | number>) => xs.join(', ')

const work = mkdtempSync(join(tmpdir(), 'rrcloud-bench-wire-'))
try {
  const file = opt.file ?? sliceSphere(work, Number(opt.radius), Number(opt.fn))
  const expected = expectedCommands(file)
  const tools = opt.tools.split(',') as Tool[]
  const runs: Run[] = []
  console.log(`file: ${opt.file ?? `slic3r sphere r ${opt.radius} mm, $fn ${opt.fn}`}, ${expected.length} commands`)
  for (const baud of opt.baud.split(',').map(Number)) {
    for (const corrupt of opt.corrupt.split(',').map(Number)) {
      for (let round = 0; round < Number(opt.rounds); round++) {
        // alternate who goes first, so neither always gets the quieter machine
        const order = round % 2 === 0 ? tools : [...tools].reverse()
        for (const tool of order) {
          const r = await measure(tool, file, expected, baud, corrupt, round)
          runs.push(r)
          const d = r.delivery
          console.log(`${baud} baud, corrupt ${corrupt}, round ${round + 1}, ${tool}: ${r.finished ? '' : 'STOPPED, stuck: '}${r.lines} lines in ${r.seconds.toFixed(2)} s = ` +
            `${r.lps.toFixed(0)} lines/s (${(r.lps / r.limit).toFixed(3)} of the wire's ${r.limit.toFixed(0)}), resends ${r.resends}, ` +
            `most held ${r.maxHeld}, wire busy ${(100 * r.wireBusy).toFixed(1)} %, missing ${d.missing}, doubled ${d.doubled}, in order ${d.inOrder}`)
        }
      }
    }
  }
  console.log(`\n| baud | corrupted lines | tool | lines/s (median of ${opt.rounds}) | wire limit | of the limit | vs printcore | resends | most lines held | lost | doubled | in order | stuck |`)
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|')
  const keys = [...new Set(runs.map((r) => `${r.baud} ${r.corrupt}`))]
  for (const key of keys) {
    const of = (tool: Tool) => runs.filter((r) => `${r.baud} ${r.corrupt}` === key && r.tool === tool)
    // a stuck run counts as 0 lines/s
    const rate = (r: Run) => r.finished ? r.lps : 0
    const base = of('printcore').length > 0 ? median(of('printcore').map(rate)) : NaN
    for (const tool of tools) {
      const rs = of(tool)
      const lps = median(rs.map(rate))
      console.log(`| ${rs[0].baud} | ${(rs[0].corrupt * 100).toFixed(0)} % | ${tool} | ${lps.toFixed(0)} | ${rs[0].limit.toFixed(0)} | ` +
        `${(lps / rs[0].limit).toFixed(2)}x | ${(lps / base).toFixed(2)}x | ${list(rs.map((r) => r.resends))} | ${list(rs.map((r) => r.maxHeld))} | ` +
        `${list(rs.map((r) => r.delivery.missing))} | ${list(rs.map((r) => r.delivery.doubled))} | ${rs.every((r) => ok(r.delivery)) ? 'yes' : 'NO'} | ` +
        `${rs.filter((r) => !r.finished).length} |`)
    }
  }
  // the baseline's failures are reported, ours fail the run
  if (!runs.filter((r) => r.tool === 'rrcloud').every((r) => ok(r.delivery))) process.exitCode = 1
} finally {
  rmSync(work, { recursive: true, force: true })
}
