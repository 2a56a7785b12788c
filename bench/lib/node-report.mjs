// Writes the figures of bench/node.sh into bench/results/node.md, between the two marker lines,
// keeping whatever analysis the file holds around them.
// Usage: node bench/lib/node-report.mjs --out FILE --command CMD --commit REV
//          --rate NAME=FILE.json [--rate NAME=FILE.json ...] --roundtrip FILE.json
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, totalmem, release } from 'node:os'
import { parseArgs } from 'node:util'

const { values: o } = parseArgs({
  options: {
    out: { type: 'string' },
    command: { type: 'string' },
    commit: { type: 'string' },
    rate: { type: 'string', multiple: true, default: [] },
    roundtrip: { type: 'string' },
  },
})
const START = '<!-- figures: start (written by bench/node.sh) -->'
const END = '<!-- figures: end -->'
const read = (f) => JSON.parse(readFileSync(f, 'utf8'))
const n0 = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '-')
const n1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '-')
const n2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '-')
const med = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
const goal = (ok) => (ok ? 'met' : '**missed**')
const fsOf = (dir) => {
  try { return execFileSync('df', ['--output=fstype,source', dir], { encoding: 'utf8' }).trim().split('\n')[1].trim().replace(/\s+/, ' on ') } catch { return '?' }
}

const lines = []
const cpu = cpus()
lines.push(`Run ${new Date().toISOString()} on commit \`${o.commit}\` with \`${o.command}\`.`, '')
lines.push(`Machine: ${cpu[0]?.model ?? '?'}, ${cpu.length} vCPU, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ` +
  `Linux ${release()}, Node ${process.version}. Load generator, servers and their children share these ` +
  'vCPUs; other work on the machine shows in the load averages below.', '')

const rates = o.rate.map((spec) => { const [name, file] = spec.split('='); return { name, r: read(file) } })
if (rates.length) {
  const r0 = rates[0].r
  lines.push(`### Task rate: ${r0.clients} clients, ${r0.fileBytes}-byte echo upload, ${r0.seconds} s per round after ${r0.warmup} s warm-up, median of ${r0.rounds} round(s)`, '')
  lines.push(`| | ${rates.map(({ name, r }) => `${name}: ${r.tmpdir} (${fsOf(r.tmpdir)})`).join(' | ')} |`)
  lines.push(`|---|${rates.map(() => '---:').join('|')}|`)
  const row = (label, f) => lines.push(`| ${label} | ${rates.map(({ r }) => f(r)).join(' | ')} |`)
  const per = (r, who, k) => med(r.perRound.map((x) => x[who]?.[k]))
  row('baseline (koa + @koa/multer to disk) requests/s', (r) => n0(r.baselineRps))
  row('node: tasks accepted/s (POST returned)', (r) => n0(r.nodeRps))
  row('**ratio node / baseline** (median of per-round ratios; goal ≥ 0.7)', (r) => `**${n2(r.ratio)}** ${goal(r.ratio >= 0.7)}`)
  row('best round of each: baseline / node (ratio)', (r) => `${n0(r.bestBaselineRps)} / ${n0(r.bestNodeRps)} (${n2(r.bestNodeRps / r.bestBaselineRps)})`)
  row('node: tasks completed/s (until the queue drained)', (r) => n0(r.nodeCompleteRate))
  row('ratio completed / baseline (median of per-round ratios)', (r) => n2(r.completeRatio))
  row('server CPU per request, ms: baseline / node', (r) => `${n2(per(r, 'baseline', 'cpuPer1k'))} / ${n2(per(r, 'node', 'cpuPer1k'))}`)
  row('node: spawn helper + tools CPU per task, ms', (r) => n2(per(r, 'node', 'helperCpuPer1k')))
  row('latency p50 / p99 ms: baseline', (r) => `${n1(per(r, 'baseline', 'p50'))} / ${n1(per(r, 'baseline', 'p99'))}`)
  row('latency p50 / p99 ms: node', (r) => `${n1(per(r, 'node', 'p50'))} / ${n1(per(r, 'node', 'p99'))}`)
  row('peak RSS MiB: baseline / node', (r) => `${n1(per(r, 'baseline', 'peakRssMiB'))} / ${n1(per(r, 'node', 'peakRssMiB'))}`)
  row('errors (non-2xx, failed tasks)', (r) => String(r.perRound.reduce((n, x) => n + (x.baseline?.errors ?? 0) + (x.node?.errors ?? 0) + (x.node?.failed ?? 0), 0)))
  row('load average before → after', (r) => `${r.loadavgBefore.map(n2).join(' ')} → ${r.loadavgAfter.map(n2).join(' ')}`)
  lines.push('', 'Per round (baseline req/s → node accepted/s, completed/s):', '')
  for (const { name, r } of rates) {
    lines.push(`- ${name}: ${r.perRound.map((x) => `${n0(x.baseline?.rps)} → ${n0(x.node?.rps)}, ${n0(x.node?.completeRate)}`).join('; ')}`)
  }
  lines.push('')
}

if (o.roundtrip) {
  const t = read(o.roundtrip)
  const b = t.runs.filter((x) => x.who === 'baseline')
  const n = t.runs.filter((x) => x.who === 'node')
  const mib = t.bytes / 2 ** 20
  lines.push(`### ${mib >= 1024 ? `${mib / 1024} GiB` : `${mib} MiB`} round trip with curl, median of ${t.rounds} round(s), files in ${t.tmpdir} (${fsOf(t.tmpdir)})`, '')
  lines.push('| | baseline (bare Node HTTP, PUT + GET) | node (echo task: POST, poll, GET /tasks/out) |', '|---|---:|---:|')
  const row = (label, f) => lines.push(`| ${label} | ${f(b)} | ${f(n)} |`)
  const secs = (k) => (xs) => n2(med(xs.map((x) => x[k])))
  row('upload s', secs('upload'))
  row('echo task after upload (tool + polling) s', (xs) => (xs === b ? '-' : secs('process')(xs)))
  row('download s', secs('download'))
  row('upload / download MiB/s', (xs) => `${n0(med(xs.map((x) => x.uploadMiBps)))} / ${n0(med(xs.map((x) => x.downloadMiBps)))}`)
  row('**round trip MiB/s** (2 × size / total s)', (xs) => `**${n0(med(xs.map((x) => x.mibPerSecond)))}**`)
  row('server CPU s', secs('cpuSeconds'))
  row('RSS MiB idle / peak (VmHWM)', (xs) => `${n1(med(xs.map((x) => x.idleRssMiB)))} / ${n1(Math.max(...xs.map((x) => x.hwmMiB)))}`)
  lines.push('')
  lines.push(`- **ratio node / baseline: ${n2(t.ratio)}** (median of per-round ratios; goal ≥ 0.8) ${goal(t.ratio >= 0.8)}; ` +
    `best round of each: ${n0(Math.max(...b.map((x) => x.mibPerSecond)))} / ${n0(Math.max(...n.map((x) => x.mibPerSecond)))} MiB/s (${n2(t.bestRatio)})`)
  lines.push(`- **node peak RSS: ${n1(t.nodePeakRssMiB)} MiB** (goal ≤ 150) ${goal(t.nodePeakRssMiB <= 150)}`)
  if (t.helperPeakRssMiB) lines.push(`- the node's spawn helper, a process of its own: peak RSS ${n1(t.helperPeakRssMiB)} MiB (node + helper ${n1(t.nodePeakRssMiB + t.helperPeakRssMiB)} MiB)`)
  lines.push('- every fetched copy had the size and sha256 of the sent file (the script stops otherwise)')
  lines.push(`- per round, MiB/s baseline → node: ${b.map((x, i) => `${n0(x.mibPerSecond)} → ${n0(n[i]?.mibPerSecond)}`).join('; ')}`)
  lines.push(`- load average before → after: ${t.loadavgBefore} → ${t.loadavgAfter}`, '')
}

const block = [START, ...lines, END].join('\n')
const old = existsSync(o.out) ? readFileSync(o.out, 'utf8') : ''
const next = old.includes(START) && old.includes(END)
  ? old.slice(0, old.indexOf(START)) + block + old.slice(old.indexOf(END) + END.length)
  : `# Node benchmarks\n\n${block}\n${old}`
writeFileSync(o.out, next)
