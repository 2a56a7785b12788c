// Streaming G-code to the simulated Marlin (test/fixtures/marlin-sim.mjs on a socat pty): rrcloud's
// printer component against printcore (Printrun's headless CLI), same file, same simulator, one run.
// Lines per second are measured by the simulator: accepted file lines between the first and the
// last one, so connecting (and printcore's fixed 2 s start delay) does not count for either.
// Delivery is checked by comparing the simulator's log of accepted commands with the file.
//
//   node --import tsx bench/printer-stream.ts [--scale 4] [--rounds 3] [--corrupt 0,0.01] [--file F.gcode]
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createPrinter } from '../src/executors/printer/printer.js'
import { startSimPty, statsOf, type SimPty } from '../test/helpers/pty.js'
import { compareDelivery, expectedCommands, printedCommands, sliceCube, type Delivery } from '../test/helpers/sliced.js'

const { values: opt } = parseArgs({
  options: {
    scale: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '3' },
    corrupt: { type: 'string', default: '0,0.01' },
    file: { type: 'string' },
  },
})

type Tool = 'rrcloud' | 'printcore'
interface Run { tool: Tool, corrupt: number, round: number, lines: number, seconds: number, lps: number, delivery: Delivery, resends: number }

async function streamWith (tool: Tool, sim: SimPty, file: string): Promise<void> {
  if (tool === 'rrcloud') {
    const printer = createPrinter({ name: 'bench', path: sim.path })
    try {
      await printer.connect()
      await printer.print(file)
    } finally {
      await printer.close()
    }
    return
  }
  await new Promise<void>((resolve, reject) => {
    const child = spawn('printcore', [sim.path, file], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d) => { stderr += String(d) })
    const timer = setTimeout(() => child.kill('SIGKILL'), 30 * 60 * 1000)
    child.once('error', reject)
    child.once('exit', (code) => {
      clearTimeout(timer)
      code === 0 ? resolve() : reject(new Error(`printcore exited with ${code}: ${stderr.slice(-500)}`))
    })
  })
}

async function measure (tool: Tool, file: string, expected: string[], corrupt: number, round: number): Promise<Run> {
  const sim = await startSimPty(corrupt > 0 ? ['--corrupt', String(corrupt), '--seed', String(round + 1)] : [])
  try {
    await streamWith(tool, sim, file)
    await sim.stop({ keepDir: true }) // the simulator writes its stats as it stops
    const stats = await statsOf(sim)
    const received = printedCommands(sim.log())
    const seconds = (stats.lastAt - stats.firstAt) / 1000
    return {
      tool, corrupt, round,
      lines: received.length,
      seconds,
      lps: received.length / seconds,
      delivery: compareDelivery(expected, received),
      resends: stats.errors,
    }
  } finally {
    await sim.stop()
    rmSync(sim.dir, { recursive: true, force: true })
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const ok = (d: Delivery) => d.missing === 0 && d.doubled === 0 && d.inOrder

const work = mkdtempSync(join(tmpdir(), 'rrcloud-bench-printer-'))
try {
  const file = opt.file ?? sliceCube(work, Number(opt.scale))
  const expected = expectedCommands(file)
  const runs: Run[] = []
  console.log(`file: ${opt.file ?? `slic3r cube, scale ${opt.scale}`}, ${expected.length} commands`)
  for (const corrupt of opt.corrupt.split(',').map(Number)) {
    for (let round = 0; round < Number(opt.rounds); round++) {
      // alternate who goes first, so neither always gets the quieter machine
      const order: Tool[] = round % 2 === 0 ? ['rrcloud', 'printcore'] : ['printcore', 'rrcloud']
      for (const tool of order) {
        const r = await measure(tool, file, expected, corrupt, round)
        runs.push(r)
        const d = r.delivery
        console.log(`corrupt ${corrupt} round ${round + 1} ${tool}: ${r.lines} lines in ${r.seconds.toFixed(2)} s = ` +
          `${r.lps.toFixed(0)} lines/s, resends ${r.resends}, missing ${d.missing}, doubled ${d.doubled}, in order ${d.inOrder}`)
      }
    }
  }
  console.log('\n| corrupted lines | tool | lines/s (median of ' + opt.rounds + ') | resends | lost | doubled | in order | ratio |')
  console.log('|---|---|---|---|---|---|---|---|')
  for (const corrupt of [...new Set(runs.map((r) => r.corrupt))]) {
    const of = (tool: Tool) => runs.filter((r) => r.tool === tool && r.corrupt === corrupt)
    const base = median(of('printcore').map((r) => r.lps))
    for (const tool of ['rrcloud', 'printcore'] as Tool[]) {
      const rs = of(tool)
      const lps = median(rs.map((r) => r.lps))
      console.log(`| ${(corrupt * 100).toFixed(0)} % | ${tool} | ${lps.toFixed(0)} | ${rs.map((r) => r.resends).join(', ')} | ` +
        `${rs.map((r) => r.delivery.missing).join(', ')} | ${rs.map((r) => r.delivery.doubled).join(', ')} | ` +
        `${rs.every((r) => ok(r.delivery)) ? 'yes' : 'NO'} | ${(lps / base).toFixed(2)}x |`)
    }
  }
  if (!runs.every((r) => ok(r.delivery))) process.exitCode = 1
} finally {
  rmSync(work, { recursive: true, force: true })
}
