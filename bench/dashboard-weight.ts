// What a browser downloads to show the dashboard the first time: Chromium loads a node's `/` with
// TASKS tasks on it; every response until the page is quiet is counted as it came over the wire
// (compressed, headers included) and decoded; the events stream is left out (it never ends).
//
//   npm run build && node --import tsx bench/dashboard-weight.ts [--tasks 50]
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { startNode } from '../src/node/node.js'

const { values } = parseArgs({ options: { tasks: { type: 'string', default: '50' } } })
process.env.RRCLOUD_MDNS = 'off'
const dataDir = mkdtempSync(join(tmpdir(), 'rrcloud-weight-'))
const node = await startNode({ port: 0, host: '127.0.0.1', dataDir, mdns: false, slots: 2 })
try {
  for (let i = 0; i < Number(values.tasks); i++) {
    const f = new FormData()
    f.append('service', 'echo')
    f.append('fileIn0', `task ${i}`)
    await fetch(`${node.url}/api/v1/tasks`, { method: 'POST', body: f })
  }
  const { chromium } = await import('playwright-core')
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--headless', '--disable-gpu', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'] })
  const page = await browser.newPage()
  const rows: Array<{ url: string, type: string, wire: number, raw: number, encoding: string }> = []
  const pending: Array<Promise<void>> = []
  page.on('requestfinished', (req) => {
    pending.push((async () => {
      const res = await req.response()
      if (!res || (res.headers()['content-type'] ?? '').startsWith('text/event-stream')) return
      const sizes = await req.sizes()
      const body = await res.body().catch(() => Buffer.alloc(0))
      rows.push({ url: req.url().replace(node.url, ''), type: res.headers()['content-type']?.split(';')[0] ?? '', wire: sizes.responseBodySize + sizes.responseHeadersSize, raw: body.length, encoding: res.headers()['content-encoding'] ?? '' })
    })())
  })
  await page.goto(`${node.url}/`, { waitUntil: 'load' })
  await page.waitForTimeout(1500)
  await Promise.all(pending)
  await browser.close()
  const kb = (n: number) => (n / 1024).toFixed(1)
  console.log(`| request | type | encoding | over the wire (KiB) | decoded (KiB) |\n|---|---|---|---|---|`)
  for (const r of rows) console.log(`| ${r.url} | ${r.type} | ${r.encoding || '-'} | ${kb(r.wire)} | ${kb(r.raw)} |`)
  const wire = rows.reduce((s, r) => s + r.wire, 0)
  const raw = rows.reduce((s, r) => s + r.raw, 0)
  console.log(`| all ${rows.length} requests, ${values.tasks} tasks on the node | | | ${kb(wire)} | ${kb(raw)} |`)
} finally {
  await node.close()
  rmSync(dataDir, { recursive: true, force: true })
}
