// The dashboard in real Chromium (Debian's `chromium`, driven by playwright-core) against one node on
// loopback with a simulated printer, and its events stream (GET /api/v1/events) over plain HTTP.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { launchChromium, noChromium } from '../helpers/chromium.js'
import { fixtures, getJson, post, root, testNode, until, waitTask, type TestNode } from '../helpers/node.js'
import { startSimPty, type SimPty } from '../helpers/pty.js'
import { printedCommands } from '../helpers/sliced.js'

const skip = noChromium

let node: TestNode
let sim: SimPty
let browser: Browser
let dir: string
let stl: Buffer
let pageErrors: string[] = []

before(async () => {
  // the page as this checkout's sources make it
  execFileSync(process.execPath, [join(root, 'scripts', 'build-web.mjs')], { stdio: 'inherit' })
  dir = mkdtempSync(join(tmpdir(), 'rrcloud-dash-'))
  execFileSync('openscad', ['-o', join(dir, 'cube.stl'), join(fixtures, 'cube.scad')], { stdio: 'ignore' })
  stl = readFileSync(join(dir, 'cube.stl'))
  // heating takes a while (M109/M190), every command a few ms: a print of some seconds
  sim = await startSimPty(['--heat-ms', '1500', '--delay-ms', '4'])
  node = await testNode({
    printers: [{ name: 'mk3', path: sim.path }],
    printerOptions: { settleMs: 50, temperatureIntervalMs: 200, safeTimeoutMs: 1000, reconnectMs: 100 },
  })
  if (skip) return
  browser = await launchChromium()
})

after(async () => {
  await browser?.close()
  await node?.stop()
  await sim?.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

async function open (path = '/', viewport = { width: 1280, height: 800 }): Promise<{ page: Page, requests: string[] }> {
  const page = await browser.newPage({ viewport })
  const requests: string[] = []
  page.on('request', (r) => requests.push(r.url()))
  page.on('pageerror', (e) => pageErrors.push(e.message))
  await page.goto(`${node.url}${path}`)
  return { page, requests }
}

/** Records, every 25 ms in the page, the text of what `selector` matches (each distinct text once, in order). */
async function record (page: Page, name: string, selector: string): Promise<void> {
  await page.evaluate(({ name, selector }) => {
    const seen: string[] = []
    ;(window as any)[name] = seen
    setInterval(() => {
      for (const el of document.querySelectorAll(selector)) {
        const t = (el as HTMLElement).innerText.trim()
        if (t && seen[seen.length - 1] !== t && !seen.includes(t)) seen.push(t)
      }
    }, 25)
  }, { name, selector })
}
const recorded = (page: Page, name: string): Promise<string[]> => page.evaluate((n) => (window as any)[n] as string[], name)

test('the page loads from the node alone and shows this node, its printer and the form', { skip, timeout: 60000 }, async () => {
  await until(async () => (await getJson(`${node.url}/api/v1/meta`)).printers[0].state === 'idle', 10000, 'the printer to connect')
  const { page, requests } = await open()
  try {
    await page.locator('#lan-rows tr', { hasText: 'this node' }).waitFor()
    await page.locator('#printer-cards .printer', { hasText: 'mk3' }).locator('.state', { hasText: 'idle' }).waitFor()
    await page.waitForLoadState('networkidle').catch(() => {})
    assert.ok(requests.length > 3)
    assert.deepEqual(requests.filter((u) => !u.startsWith(`${node.url}/`)), [], 'nothing is asked of anyone but the node')
    assert.ok(await page.locator('label:has-text("Service") select[name=service]').isVisible(), 'the service select has a label')
    assert.deepEqual(pageErrors, [])
  } finally { await page.close() }
})

test('a dropped STL and slic3r config: sent as one task, its progress and completion show without a reload; a reload sends nothing', { skip, timeout: 90000 }, async () => {
  const { page } = await open()
  try {
    await page.selectOption('#submit-service', 'slic3r')
    await page.evaluate(({ ini, stl }) => {
      const dt = new DataTransfer()
      dt.items.add(new File([ini], 'prusa.ini'))
      dt.items.add(new File([new Uint8Array(stl)], 'cube.stl'))
      document.getElementById('drop')!.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }))
    }, { ini: readFileSync(join(fixtures, 'slic3r.ini'), 'utf8'), stl: [...stl] })
    const roles = page.locator('#file-list li')
    await until(async () => (await roles.count()) === 2, 5000, 'two files listed')
    assert.equal(await roles.filter({ hasText: 'prusa.ini' }).locator('select').inputValue(), 'config')
    assert.equal(await roles.filter({ hasText: 'cube.stl' }).locator('select').inputValue(), 'input')
    await record(page, 'states', '#task-rows tr')
    const count = node.runner.list().length
    await Promise.all([page.waitForURL(/\/ui\/\?service=info&id=\d+-\d{6}$/), page.click('input[type=submit]')])
    const id = new URL(page.url()).searchParams.get('id')!
    const row = page.locator('#task-rows tr', { hasText: id })
    await row.locator('.state', { hasText: 'complete' }).waitFor({ timeout: 60000 })
    const t = await getJson(`${node.url}/api/v1/tasks/${id}`)
    assert.equal(t.status, 'complete')
    assert.equal(t.service, 'slic3r')
    assert.match(t.in, /^--load=tasks\/in\/[\d-]+\.ini,tasks\/in\/[\d-]+\.stl$/, 'the config with --load=, then the model')
    const states = (await recorded(page, 'states')).filter((s) => s.includes(id))
    assert.ok(states.some((s) => /\b(queued|busy)\b/.test(s)), `the task was seen running: ${states.join(' | ')}`)
    assert.ok(states.some((s) => /=> /.test(s) && !/complete/.test(s)), `slic3r's progress was seen before the end: ${states.join(' | ')}`)
    const href = await row.locator('a.out').getAttribute('href')
    assert.equal(href, `/${t.out}`)
    assert.match(await (await fetch(`${node.url}${href}`)).text(), /^G1 /m, 'the output link gives the G-code')
    // the log of the task the page sent is open
    await page.locator('#log-text', { hasText: 'Filament required' }).waitFor({ timeout: 10000 })
    await page.reload()
    await page.locator('#task-rows tr.focus', { hasText: id }).waitFor()
    assert.equal(node.runner.list().length, count + 1, 'one task, however often the page is reloaded')
    assert.deepEqual(pageErrors, [])
  } finally { await page.close() }
})

/** G-code that heats (target first, then the reading) and moves for some seconds. */
function printFile (): string {
  const lines = ['M140 S60', 'M104 S200', 'M109 S200', 'M190 S60', 'G28', 'G90']
  for (let i = 0; i < 2500; i++) lines.push(`G1 X${(i % 100) + 10} Y${Math.floor(i / 100) + 10} E${(i / 50).toFixed(2)} F3000`)
  return lines.join('\n') + '\n'
}

test('a print from the page: temperatures and progress move; pause, resume and cancel work from the printer card', { skip, timeout: 120000 }, async () => {
  const { page } = await open('/ui/')
  try {
    const card = page.locator('#printer-cards .printer', { hasText: 'mk3' })
    await card.locator('.state', { hasText: 'idle' }).waitFor()
    await page.selectOption('#submit-service', 'printrun')
    assert.ok(await page.locator('#printer-field').isVisible(), 'the printer is asked for')
    await page.setInputFiles('#files-input', { name: 'part.gcode', mimeType: 'text/plain', buffer: Buffer.from(printFile()) })
    await record(page, 'temps', '#printer-cards .printer .temps')
    await record(page, 'jobs', '#printer-cards .printer .job-text')
    await Promise.all([page.waitForURL(/id=\d+-\d{6}$/), page.click('input[type=submit]')])
    const id = new URL(page.url()).searchParams.get('id')!
    assert.equal((await getJson(`${node.url}/api/v1/tasks/${id}`)).printer, 'mk3')
    await card.locator('.temps', { hasText: 'Hotend 200.0 / 200' }).waitFor({ timeout: 20000 })
    const temps = await recorded(page, 'temps')
    assert.ok(temps.some((s) => /Hotend 20\.0 \/ 200/.test(s)), `heating was seen: ${temps.join(' | ')}`)
    assert.ok(await card.locator('svg.graph polyline.actual').count() >= 2, 'a graph of the hotend and the bed')
    await until(async () => (await recorded(page, 'jobs')).filter((s) => /\d+(\.\d)?%/.test(s)).length >= 3, 20000, 'progress to move')
    const percents = (await recorded(page, 'jobs')).map((s) => Number(/([\d.]+)%/.exec(s)?.[1] ?? NaN)).filter((x) => !Number.isNaN(x))
    assert.ok(percents.some((p, i) => i > 0 && p > percents[i - 1]), `progress grows: ${percents.join(' ')}`)
    assert.ok((await recorded(page, 'jobs')).some((s) => s.includes(id)), 'the card names the task')

    await card.getByRole('button', { name: 'Pause: mk3' }).click()
    await until(async () => (await getJson(`${node.url}/api/v1/tasks/${id}`)).status === 'paused', 10000, 'paused')
    await card.locator('.state', { hasText: 'paused' }).waitFor()
    // the pause is in effect once the firmware has been told to finish its moves
    await until(() => printedCommands(sim.log()).at(-1) === 'M400', 5000, 'M400')
    const n = printedCommands(sim.log()).length
    await page.waitForTimeout(500)
    assert.equal(printedCommands(sim.log()).length, n, 'nothing is sent while paused')
    await card.getByRole('button', { name: 'Resume: mk3' }).click()
    await until(async () => (await getJson(`${node.url}/api/v1/tasks/${id}`)).status === 'busy', 10000, 'printing again')
    await until(() => printedCommands(sim.log()).length > n + 20, 10000, 'lines sent again')
    await card.getByRole('button', { name: 'Cancel: mk3' }).click()
    // a confirmation first; Cancel there leaves the print alone
    await page.locator('#ask[open]').waitFor()
    assert.ok(await page.locator('#ask-cancel').evaluate((b) => b === document.activeElement), 'the safe choice has the focus')
    await page.click('#ask-ok')
    const done = await waitTask(node.url, id, 20000)
    assert.equal(done.status, 'cancelled')
    assert.deepEqual(printedCommands(sim.log()).slice(-4), ['M104 S0', 'M140 S0', 'M107', 'M84'])
    await page.locator('#task-rows tr', { hasText: id }).locator('.state', { hasText: 'cancelled' }).waitFor()
    // the bed holds what was printed until someone says it is clear
    await card.locator('.state', { hasText: 'finished' }).waitFor()
    await card.getByRole('button', { name: 'Bed is clear: mk3' }).click()
    await card.locator('.state', { hasText: 'idle' }).waitFor()
    assert.deepEqual(pageErrors, [])
  } finally { await page.close() }
})

// --- the events stream over plain HTTP ---

interface Sse { id?: string, event: string, data: any }
interface Stream { events: Sse[], comments: string[], wait (pred: (e: Sse) => boolean, ms: number, what: string): Promise<Sse>, close (): void }

function events (url: string, headers: Record<string, string> = {}): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      if (res.statusCode !== 200) { reject(new Error(`status ${res.statusCode}`)); return }
      const out: Stream = {
        events: [],
        comments: [],
        wait: (pred, ms, what) => until(() => out.events.find(pred), ms, what),
        close: () => req.destroy(),
      }
      let buf = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        buf += chunk
        let cut
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut)
          buf = buf.slice(cut + 2)
          const e: Partial<Sse> = {}
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) out.comments.push(line)
            else if (line.startsWith('id: ')) e.id = line.slice(4)
            else if (line.startsWith('event: ')) e.event = line.slice(7)
            else if (line.startsWith('data: ')) e.data = JSON.parse(line.slice(6))
          }
          if (e.event) out.events.push(e as Sse)
        }
      })
      resolve(out)
    })
    req.on('error', reject)
    req.end()
  })
}

const seqOf = (id?: string) => Number(id?.split('-')[1])

test('events: the state now, then every change; Last-Event-ID resumes with exactly what was missed; a lost id gets reset', { timeout: 60000 }, async () => {
  const url = `${node.url}/api/v1/events`
  const a = await events(url)
  try {
    const printer = await a.wait((e) => e.event === 'printer', 5000, 'the printer now')
    assert.equal(printer.data.name, 'mk3')
    assert.ok(Array.isArray(printer.data.history), 'with its recent temperatures')
    assert.ok(a.events.some((e) => e.event === 'stats' && typeof e.data.free === 'number' && typeof e.data.load === 'number'))
    const head = a.events[0].id!
    assert.ok(a.events.every((e) => e.id === head), 'the state now carries the id of the newest event')
    const one = (await post(node.url, { service: 'echo' }, [['fileIn0', 'one', 'a.txt']])).body
    await a.wait((e) => e.event === 'task' && e.data.id === one.id && e.data.status === 'complete', 10000, 'task one to complete')
    assert.deepEqual(a.events.filter((e) => e.event === 'task' && e.data.id === one.id).map((e) => e.data.status).filter((s, i, all) => all.indexOf(s) === i),
      ['queued', 'busy', 'complete'])
    const seqs = a.events.slice(a.events.findIndex((e) => e.event === 'task')).map((e) => seqOf(e.id))
    assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]), `ids grow: ${seqs.join(' ')}`)
    const firstOfOne = a.events.find((e) => e.event === 'task' && e.data.id === one.id)!
    a.close()

    // missed while away: the rest of task one's events and all of task two's
    const two = (await post(node.url, { service: 'echo' }, [['fileIn0', 'two', 'b.txt']])).body
    await waitTask(node.url, two.id)
    const b = await events(url, { 'last-event-id': firstOfOne.id! })
    try {
      await b.wait((e) => e.event === 'task' && e.data.id === two.id && e.data.status === 'complete', 5000, 'task two, missed')
      const after = a.events.slice(a.events.indexOf(firstOfOne) + 1)
      assert.deepEqual(b.events.slice(0, after.length).map((e) => e.id), after.map((e) => e.id), 'what the first stream had after that id, again')
      assert.equal(seqOf(b.events[0].id), seqOf(firstOfOne.id) + 1, 'from the next one on')
      assert.ok(!b.events.some((e) => e.event === 'reset'))
      assert.ok(!b.events.some((e) => e.event === 'printer' && e.data.history), 'no state again')
    } finally { b.close() }

    // an id of another run of the node (or one no longer kept): reset, then the state now
    const c = await events(`${url}?events=printer,task`, { 'last-event-id': 'zzzz-12' })
    try {
      await c.wait((e) => e.event === 'printer', 5000, 'the state after the reset')
      assert.equal(c.events[0].event, 'reset')
      assert.equal(c.events[0].data.lastEventId, 'zzzz-12')
      assert.ok(c.events.every((e) => ['reset', 'printer', 'task'].includes(e.event)), 'only the events asked for')
    } finally { c.close() }
    const bad = await fetch(`${url}?events=tasks`)
    assert.equal(bad.status, 400)
    assert.match(((await bad.json()) as any).error, /task, pipeline, printer, peer, stats, queue/)
  } finally { a.close() }
})

test('events: keepalive comments on a quiet stream; curl -N reads it as text', { timeout: 30000 }, async () => {
  const quiet = await testNode({ timeouts: { idle: 900 } })
  try {
    const s = await events(`${quiet.url}/api/v1/events`)
    await until(() => s.comments.includes(': keepalive'), 5000, 'a keepalive')
    s.close()
    // curl ends at --max-time (exit 28): what it printed by then counts
    const text = await new Promise<string>((resolve) => execFile('curl', ['-sN', '--max-time', '1', `${quiet.url}/api/v1/events?events=stats`], { encoding: 'utf8' }, (_err, stdout) => resolve(stdout)))
    assert.match(text, /^retry: \d+$/m)
    assert.match(text, /^id: [0-9a-z]+-\d+\nevent: stats\ndata: \{.*"free":2/m)
  } finally { await quiet.stop() }
})

test('a node with a token: the page asks for it once, keeps it, and sends it; a wrong one is asked for again', { skip, timeout: 60000 }, async () => {
  const locked = await testNode({ token: 's3cret' })
  const page = await browser.newPage()
  try {
    page.on('pageerror', (e) => pageErrors.push(e.message))
    await page.goto(`${locked.url}/`)
    await page.locator('#lan-rows .lock').waitFor()
    const submit = async () => {
      await page.selectOption('#submit-service', 'echo')
      await page.setInputFiles('#files-input', { name: 'a.txt', mimeType: 'text/plain', buffer: Buffer.from('with a token') })
      await page.click('input[type=submit]')
    }
    await submit()
    await page.locator('#ask[open]', { hasText: 'needs a token' }).waitFor()
    await page.fill('#ask-input', 'nope')
    await page.click('#ask-ok')
    await page.locator('#ask[open]', { hasText: 'That token was refused' }).waitFor()
    await page.fill('#ask-input', 's3cret')
    await page.click('#ask-ok')
    await page.waitForURL(/id=\d+-\d{6}$/)
    const id = new URL(page.url()).searchParams.get('id')!
    assert.equal((await waitTask(locked.url, id)).status, 'complete')
    assert.match(await page.evaluate(() => localStorage.getItem('rrcloud.tokens') ?? ''), /s3cret/)
    await submit()
    await page.waitForURL((u) => !u.searchParams.has('id') || u.searchParams.get('id') !== id)
    assert.equal(await page.locator('#ask[open]').count(), 0, 'not asked again')
    assert.equal(locked.runner.list().length, 2)
  } finally {
    await page.close()
    await locked.stop()
  }
})

test('a folder: its model is the input, every other file goes along under its path in the folder', { skip, timeout: 60000 }, async () => {
  const { page } = await open()
  try {
    let body = ''
    await page.route('**/api/v1/tasks', async (route) => {
      if (route.request().method() !== 'POST') return route.continue()
      body = route.request().postDataBuffer()?.toString('latin1') ?? ''
      await route.fulfill({ status: 400, contentType: 'application/json', body: JSON.stringify({ error: 'seen', status: 400 }) })
    })
    await page.selectOption('#submit-service', 'openscad')
    await page.setInputFiles('#folder-input', join(fixtures, 'projects', 'openscad', 'part'))
    const list = page.locator('#file-list li')
    await until(async () => (await list.count()) === 7, 5000, 'the folder\'s files listed')
    assert.equal(await list.filter({ hasText: /^main\.scad/ }).locator('select').inputValue(), 'input')
    assert.equal(await list.filter({ hasText: 'lib/shapes.scad' }).locator('select').inputValue(), 'file', 'paths inside the folder')
    await page.click('input[type=submit]')
    await page.locator('#submit-status', { hasText: 'Not sent: seen' }).waitFor()
    const part = (name: string, filename?: string) => new RegExp(`name="${name}"${filename ? `; filename="${filename.replace(/\./g, '\\.')}"` : ''}`)
    assert.match(body, part('service'))
    assert.match(body, part('fileIn0', 'main.scad'))
    assert.match(body, /name="path0"\r\n\r\nmain\.scad\r\n/)
    for (const f of ['config/dims.scad', 'data/outline.dxf', 'data/peg.stl', 'data/terrain.dat', 'lib/shapes.scad', 'lib/profile.dxf']) assert.match(body, part('file', f))
    assert.doesNotMatch(body, /fileIn1|part\/main/, 'one input; the folder\'s own name is not part of the paths')
  } finally { await page.close() }
})
