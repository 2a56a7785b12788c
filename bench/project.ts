// Projects and the node's store, side by side in one run against one node (in this process, on
// 127.0.0.1, mDNS off), the client reached through a proxy that counts every byte it sends:
//  1. the same large STL sliced twice through `slic3r.cloud`: the second run's time and bytes sent
//     against the first (the inputs are in the node's store, the result in its cache);
//  2. an OpenSCAD project of 20 files, changed in one file between two runs: bytes sent by the
//     second run against the first (a full upload).
// The client is the committed product (git HEAD), built by bench/lib/build-product.sh.
//
//   node --import tsx bench/project.ts [--stl-mib 50] [--out bench/results/project.md]
import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { once } from 'node:events'
import { createServer, connect, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startNode } from '../src/node/node.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const { values: opt } = parseArgs({
  options: {
    'stl-mib': { type: 'string', default: '50' },
    out: { type: 'string', default: join(root, 'bench', 'results', 'project.md') },
  },
})
process.env.RRCLOUD_MDNS = 'off'
const tmp = mkdtempSync(join(tmpdir(), 'rrcloud-bench-project-'))
console.error('building the product (git HEAD)')
const build = spawnSync(join(root, 'bench', 'lib', 'build-product.sh'), [join(tmp, 'product')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
if (build.status !== 0) throw new Error(`bench/lib/build-product.sh failed (${build.status})`)
const rrcloud = build.stdout.trim().split('\n').pop()!
const bin = (name: string) => join(rrcloud, '..', name)
const rev = spawnSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim()

const node = await startNode({ port: 0, host: '127.0.0.1', dataDir: join(tmp, 'data'), slots: 2, log: () => {} })

/** A TCP proxy in front of the node that counts the bytes clients send through it. */
let sent = 0
const proxy = createServer((c) => {
  const up = connect(node.port, '127.0.0.1')
  c.on('data', (b) => { sent += b.length })
  c.pipe(up).pipe(c)
  const close = () => { c.destroy(); up.destroy() }
  c.on('error', close); up.on('error', close); c.on('close', close); up.on('close', close)
})
proxy.listen(0, '127.0.0.1')
await once(proxy, 'listening')
const server = `--s=127.0.0.1:${(proxy.address() as AddressInfo).port}`

async function run (exe: string, args: string[], cwd: string): Promise<{ ms: number; bytes: number }> {
  sent = 0
  const t0 = process.hrtime.bigint()
  const child = spawn(exe, [server, ...args], { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  child.stderr.on('data', (b) => { err += b })
  const [code] = await once(child, 'exit')
  if (code !== 0) throw new Error(`${exe} ${args.join(' ')} exited ${code}: ${err}`)
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, bytes: sent }
}
const MiB = (n: number) => `${(n / 2 ** 20).toFixed(2)} MiB`
const KiB = (n: number) => `${(n / 1024).toFixed(1)} KiB`

// 1. a large STL: a finely faceted sphere, as ASCII STL, about --stl-mib in size
const stlDir = join(tmp, 'stl')
mkdirSync(stlDir)
const want = Number(opt['stl-mib']) * 2 ** 20
// an ASCII facet as openscad writes it is ~ 390 bytes; a sphere of $fn = n has ~ n²/2 facets
const fn = Math.round(Math.sqrt(2 * want / 390))
writeFileSync(join(stlDir, 'ball.scad'), `sphere(r = 30, $fn = ${fn});\n`)
console.error(`making the STL ($fn = ${fn})`)
const made = spawnSync('openscad', ['-o', join(stlDir, 'ball.stl'), join(stlDir, 'ball.scad')], { stdio: 'ignore' })
if (made.status !== 0) throw new Error('openscad could not make the STL')
copyFileSync(join(root, 'test', 'fixtures', 'slic3r.ini'), join(stlDir, 'cfg.ini'))
const stlBytes = statSync(join(stlDir, 'ball.stl')).size
console.error(`slicing ${MiB(stlBytes)} twice`)
const slice1 = await run(bin('slic3r.cloud'), ['--load=cfg.ini', 'ball.stl', '-o', 'one.gcode'], stlDir)
const slice2 = await run(bin('slic3r.cloud'), ['--load=cfg.ini', 'ball.stl', '-o', 'two.gcode'], stlDir)
const same = spawnSync('cmp', ['-s', join(stlDir, 'one.gcode'), join(stlDir, 'two.gcode')]).status === 0

// 2. an OpenSCAD project of 20 files: main.scad includes 19 parts from parts/, each a few KiB
const proj = join(tmp, 'proj')
mkdirSync(join(proj, 'parts'), { recursive: true })
const part = (i: number, v = 0) => `// part ${i}, version ${v}\nmodule part${i} () { translate([${i * 12}, 0, 0]) cube([10, 10, ${5 + v}]); }\n` +
  Array.from({ length: 80 }, (_, k) => `// padding line ${k}: a part of a real project has its comments and its history\n`).join('')
for (let i = 1; i < 20; i++) writeFileSync(join(proj, 'parts', `p${i}.scad`), part(i))
writeFileSync(join(proj, 'main.scad'), Array.from({ length: 19 }, (_, i) => `include <parts/p${i + 1}.scad>\n`).join('') +
  Array.from({ length: 19 }, (_, i) => `part${i + 1}();\n`).join(''))
const projBytes = [join(proj, 'main.scad'), ...Array.from({ length: 19 }, (_, i) => join(proj, 'parts', `p${i + 1}.scad`))].reduce((n, f) => n + statSync(f).size, 0)
const scad1 = await run(bin('openscad.cloud'), ['main.scad', '-o', 'one.stl'], proj)
writeFileSync(join(proj, 'parts', 'p7.scad'), part(7, 1))
const scad2 = await run(bin('openscad.cloud'), ['main.scad', '-o', 'two.stl'], proj)

const lines = [
  `# Projects and the store (${new Date().toISOString().slice(0, 10)}, ${rev})`,
  '',
  '`node --import tsx bench/project.ts`: one node on 127.0.0.1 (`startNode` defaults: sandbox auto, --cache-size 2 GiB, mDNS off),',
  'the client (`*.cloud` of the built product) through a proxy that counts the bytes the client sends.',
  '',
  `## The same ${MiB(stlBytes)} STL sliced twice (slic3r.cloud --load=cfg.ini ball.stl)`,
  '',
  '| run | time | sent by the client |',
  '|---|---|---|',
  `| first | ${(slice1.ms / 1000).toFixed(2)} s | ${MiB(slice1.bytes)} |`,
  `| second | ${(slice2.ms / 1000).toFixed(2)} s | ${KiB(slice2.bytes)} |`,
  `| second / first | **${(slice1.ms / slice2.ms).toFixed(1)}x faster** (goal ≥ 20x) | ${(slice2.bytes / slice1.bytes * 100).toFixed(3)} % (goal: no input bytes again) |`,
  '',
  `The two G-code files are ${same ? 'identical' : 'DIFFERENT'}.`,
  '',
  `## An OpenSCAD project of 20 files (${KiB(projBytes)}), one file changed between two runs`,
  '',
  '| run | time | sent by the client |',
  '|---|---|---|',
  `| first (every file) | ${scad1.ms.toFixed(0)} ms | ${KiB(scad1.bytes)} |`,
  `| after changing parts/p7.scad | ${scad2.ms.toFixed(0)} ms | ${KiB(scad2.bytes)} |`,
  `| second / first | | **${(scad2.bytes / scad1.bytes).toFixed(2)}x** the bytes |`,
  '',
]
writeFileSync(opt.out!, lines.join('\n'))
console.log(lines.join('\n'))
proxy.close()
await node.close()
rmSync(tmp, { recursive: true, force: true })
