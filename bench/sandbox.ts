// The cost of the sandbox per task: the same tool on the same input, run bare and run as a node
// runs it (src/executors/sandbox.ts: prlimit, bwrap, setpriv as root, a fresh task folder),
// in interleaved rounds. Usage: node --import tsx bench/sandbox.ts [--rounds 20]
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { prepareRunDir, probeSandbox, toolEnv, wrap } from '../src/executors/sandbox.js'

const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1]) || 20
const fixtures = new URL('../test/fixtures/', import.meta.url).pathname
const work = mkdtempSync(join(tmpdir(), 'rrcloud-bench-sandbox-'))
const sb = probeSandbox('bwrap')
copyFileSync(join(fixtures, 'slic3r.ini'), join(work, 'cfg.ini'))
const scad = join(work, 'cube.scad')
spawnSync('sh', ['-c', `echo 'cube(20);' > ${scad}`])
spawnSync('openscad', ['-o', join(work, 'cube.stl'), scad], { stdio: 'ignore' })

interface Case { name: string; exe: string; args: string[]; inputs: string[]; out: string }
const cases: Case[] = [
  { name: 'true (bwrap start-up alone)', exe: '/usr/bin/true', args: [], inputs: [], out: '' },
  { name: 'openscad 20 mm cube → STL', exe: '/usr/bin/openscad', args: ['cube.scad', '-oout.stl'], inputs: ['cube.scad'], out: 'out.stl' },
  { name: 'slic3r 20 mm cube → G-code', exe: '/usr/bin/slic3r', args: ['--no-gui', '--load=cfg.ini', 'cube.stl', '--output=out.gcode'], inputs: ['cfg.ini', 'cube.stl'], out: 'out.gcode' },
]

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }

function once (c: Case, sandboxed: boolean): number {
  const dir = join(work, sandboxed ? 'run' : 'bare')
  const inputs = c.inputs.map((name) => ({ host: join(work, name), name }))
  const t0 = process.hrtime.bigint()
  let r
  if (sandboxed) {
    prepareRunDir(sb, dir, inputs)
    const cmd = wrap(sb, { exe: c.exe, args: c.args, runDir: dir, inputs, ro: [], env: {}, limits: { memoryMiB: 4096, cpuSec: 3600, fileMiB: 4096, procs: 256 } })
    r = spawnSync(cmd.exe, cmd.args, { cwd: dir, env: toolEnv(sb, dir, {}), stdio: 'ignore' })
  } else {
    // the same work without a sandbox: a fresh folder with the inputs in it
    prepareRunDir({ mode: 'none', note: '' }, dir, inputs)
    r = spawnSync(c.exe, c.args, { cwd: dir, env: toolEnv({ mode: 'none', note: '' }, dir, {}), stdio: 'ignore' })
  }
  const t = ms(t0)
  if (r.status !== 0) throw new Error(`${c.name} (${sandboxed ? 'sandboxed' : 'bare'}) failed: ${r.status ?? r.signal}`)
  rmSync(dir, { recursive: true, force: true })
  return t
}

console.log(`sandbox: ${sb.note}; ${rounds} interleaved rounds each\n`)
console.log('| tool | bare (median) | sandboxed (median) | added | ratio |')
console.log('|---|---|---|---|---|')
for (const c of cases) {
  const bare: number[] = []
  const boxed: number[] = []
  once(c, false); once(c, true)
  for (let i = 0; i < rounds; i++) {
    if (i % 2) { bare.push(once(c, false)); boxed.push(once(c, true)) } else { boxed.push(once(c, true)); bare.push(once(c, false)) }
  }
  const [b, s] = [median(bare), median(boxed)]
  console.log(`| ${c.name} | ${b.toFixed(1)} ms | ${s.toFixed(1)} ms | ${(s - b).toFixed(1)} ms | ${(s / b).toFixed(2)}x |`)
}
rmSync(work, { recursive: true, force: true })
