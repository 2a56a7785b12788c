// The dashboard drives the print farm in real Chromium (Debian's `chromium`, driven by
// playwright-core): one node on loopback with a simulated printer in group mk3. Copies queued from
// the page wait for the bed; "Bed is clear" lets the next one print; jobs are reordered, removed,
// held and let go from the page, and the queue follows without a reload.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { launchChromium, noChromium } from '../helpers/chromium.js'
import { getJson, root, testNode, until, type TestNode } from '../helpers/node.js'
import { startSimPty, type SimPty } from '../helpers/pty.js'

const skip = noChromium

let node: TestNode
let sim: SimPty
let browser: Browser
const pageErrors: string[] = []

before(async () => {
  execFileSync(process.execPath, [join(root, 'scripts', 'build-web.mjs')], { stdio: 'inherit' })
  // every command takes some ms: a print of about a second
  sim = await startSimPty(['--delay-ms', '12'])
  node = await testNode({
    printers: [{ name: 'mk3a', path: sim.path, groups: ['mk3'] }],
    printerOptions: { settleMs: 50, temperatureIntervalMs: 200, safeTimeoutMs: 1000, reconnectMs: 100 },
    farm: { everyMs: 200 },
  })
  await until(async () => (await getJson(`${node.url}/api/v1/printers`))[0]?.connection === 'idle', 10000, 'the printer to connect')
  if (skip) return
  browser = await launchChromium()
})

after(async () => {
  await browser?.close()
  await node?.stop()
  await sim?.stop()
})

/** A short print whose last line names it, so that its prints can be counted on the simulator. */
function gcode (tag: string): Buffer {
  const lines = ['G28', 'G90', ...Array.from({ length: 60 }, (_, i) => `G1 X${10 + i} Y${10 + (i % 7)} F3000`), `M117 ${tag} done`]
  return Buffer.from(`; ${tag}\n${lines.join('\n')}\n`)
}
const prints = (tag: string) => sim.log().filter((l) => l === `M117 ${tag} done`).length
const job = (id: string) => getJson(`${node.url}/api/v1/queue/${id}`)
const queueIds = async () => (await getJson(`${node.url}/api/v1/queue`)).map((j: any) => j.id as string)

async function queueByApi (tag: string): Promise<string> {
  const form = new FormData()
  form.append('group', 'mk3')
  form.append('file', new Blob([gcode(tag)]), `${tag}.gcode`)
  const r = await fetch(`${node.url}/api/v1/queue`, { method: 'POST', body: form, headers: { accept: 'application/json' } })
  assert.equal(r.status, 201)
  return ((await r.json()) as any).id
}

/** Records, every 25 ms in the page, each distinct text of what `selector` matches. */
async function record (page: Page, name: string, selector: string): Promise<void> {
  await page.evaluate(({ name, selector }) => {
    const seen: string[] = []
    ;(window as any)[name] = seen
    setInterval(() => {
      for (const el of document.querySelectorAll(selector)) {
        const t = (el as HTMLElement).innerText.replace(/\s+/g, ' ').trim()
        if (t && !seen.includes(t)) seen.push(t)
      }
    }, 25)
  }, { name, selector })
}
const recorded = (page: Page, name: string): Promise<string[]> => page.evaluate((n) => (window as any)[n] as string[], name)

test('from the page: 2 copies to group mk3, the second waits for "Bed is clear"; jobs reordered, removed, held and let go; the queue follows live', { skip, timeout: 120000 }, async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  page.on('pageerror', (e) => pageErrors.push(e.message))
  try {
    await page.goto(`${node.url}/`)
    const card = page.locator('#printer-cards .printer', { hasText: 'mk3a' })
    await card.locator('.state', { hasText: 'idle' }).waitFor()
    assert.equal(await card.locator('.group').innerText(), 'mk3', 'the group as a label')
    const group = page.locator('#queue .qgroup', { hasText: 'Group mk3' })
    await group.locator('.empty', { hasText: 'No jobs' }).waitFor()

    // a G-code file: the form offers the farm
    await page.setInputFiles('#files-input', { name: 'part.gcode', mimeType: 'text/plain', buffer: gcode('part') })
    await page.locator('#farm-fields').waitFor()
    assert.ok(!await page.locator('#copies-field').isVisible(), 'copies only once the farm is chosen')
    await page.getByLabel('Print on').selectOption({ label: 'group mk3 (1 printer)' })
    await page.getByLabel('Copies').fill('2')
    assert.ok(!await page.locator('#submit-service').isVisible(), 'no service: the queue prints it')
    await record(page, 'rows', '#queue-list tr')
    await record(page, 'states', '#printer-cards .printer .state')
    await Promise.all([page.waitForURL(/\/ui\/\?job=j\d+-\d{6}$/), page.click('input[type=submit]')])
    const id = new URL(page.url()).searchParams.get('job')!
    assert.deepEqual([(await job(id)).group, (await job(id)).copies.length], ['mk3', 2])
    const row = group.locator('tr', { hasText: id })
    await row.waitFor()
    assert.equal(await row.getAttribute('aria-current'), 'true', 'the job just queued is marked')
    assert.match(await page.locator('#submit-status').innerText(), new RegExp(`Job ${id} \\(part\\.gcode, 2 copies\\) queued`))

    // the first copy prints; the bed then holds it and the second waits
    await card.locator('.state', { hasText: 'finished' }).waitFor({ timeout: 15000 })
    await card.locator('.bed', { hasText: 'the bed holds a print (part.gcode)' }).waitFor()
    await row.locator('.counts', { hasText: '1 done · 0 printing · 1 waiting · 0 failed' }).waitFor({ timeout: 5000 })
    assert.equal(await row.locator('.state').innerText(), 'waiting')
    await page.waitForTimeout(800)
    assert.equal(prints('part'), 1, 'the second copy waits for the bed')
    assert.ok((await recorded(page, 'rows')).some((t) => t.includes('1 printing')), 'the copy was seen printing')
    assert.ok((await recorded(page, 'states')).includes('printing'), 'the printer was seen printing')

    // "Bed is clear" from the page: the second copy prints
    await page.evaluate(() => { (window as any).sameLoad = true })
    await card.getByRole('button', { name: /^Bed is clear: mk3a/ }).click()
    await row.locator('.counts', { hasText: '2 done · 0 printing · 0 waiting · 0 failed' }).waitFor({ timeout: 15000 })
    assert.equal(await row.locator('.state').innerText(), 'done')
    await card.locator('.state', { hasText: 'finished' }).waitFor()
    assert.equal(prints('part'), 2)

    // a reload shows the job and queues nothing
    await page.reload()
    await group.locator('tr[aria-current=true]', { hasText: id }).waitFor()
    assert.deepEqual(await queueIds(), [id], 'one job, however often the page is reloaded')

    // the group held from the page: what is queued now keeps its order
    await group.getByRole('button', { name: 'Pause the queue of group mk3' }).click()
    await group.locator('.held', { hasText: 'nothing new starts' }).waitFor()
    await page.evaluate(() => { (window as any).sameLoad = true })
    const b = await queueByApi('b')
    const c = await queueByApi('c')
    const rowB = group.locator('tr', { hasText: b })
    const rowC = group.locator('tr', { hasText: c })
    await rowC.locator('.state', { hasText: 'paused' }).waitFor()
    assert.equal(await group.getByRole('button', { name: `Move job c.gcode (${c}) down` }).isDisabled(), true, 'the last job cannot go down')
    await group.getByRole('button', { name: `Move job c.gcode (${c}) up` }).click()
    await until(async () => (await queueIds()).join() === [id, c, b].join(), 5000, 'c before b')
    await until(async () => (await group.locator('tbody tr').allInnerTexts()).map((t) => t.includes(c) ? 'c' : t.includes(b) ? 'b' : 'x').join('') === 'xcb', 5000, 'the rows in the new order')
    assert.ok(await rowC.evaluate((tr) => tr.contains(document.activeElement)), 'the focus stays with the job moved')
    await group.getByRole('button', { name: `Remove job b.gcode (${b})` }).click()
    await page.locator('#ask[open]', { hasText: 'Remove job b.gcode' }).waitFor()
    assert.ok(await page.locator('#ask-cancel').evaluate((el) => el === document.activeElement), 'the safe choice has the focus')
    await page.click('#ask-ok')
    await rowB.waitFor({ state: 'detached' })
    assert.equal((await fetch(`${node.url}/api/v1/queue/${b}`)).status, 404)

    // cleared and let go: c prints, b never does
    await card.getByRole('button', { name: /^Bed is clear: mk3a/ }).click()
    await page.waitForTimeout(600)
    assert.equal(prints('c'), 0, 'held while the group is paused')
    await group.getByRole('button', { name: 'Resume the queue of group mk3' }).click()
    await rowC.locator('.state', { hasText: 'done' }).waitFor({ timeout: 15000 })
    assert.deepEqual([prints('c'), prints('b')], [1, 0])
    assert.ok(await group.locator('.held').isHidden(), 'let go')
    assert.equal(await page.evaluate(() => (window as any).sameLoad), true, 'all of it without a reload')
    assert.deepEqual(pageErrors, [])
  } finally { await page.close() }
})

test('a job for one printer by name: shown with that printer, removed from the page', { skip, timeout: 60000 }, async () => {
  const page = await browser.newPage()
  page.on('pageerror', (e) => pageErrors.push(e.message))
  try {
    await page.goto(`${node.url}/ui/`)
    const card = page.locator('#printer-cards .printer', { hasText: 'mk3a' })
    await card.locator('.state', { hasText: 'finished' }).waitFor()
    await page.setInputFiles('#files-input', { name: 'named.gcode', mimeType: 'text/plain', buffer: gcode('named') })
    const nodeId = (await getJson(`${node.url}/api/v1/meta`)).id
    await page.getByLabel('Print on').selectOption(`printer:${nodeId}:mk3a`)
    await Promise.all([page.waitForURL(/job=j\d+-\d{6}$/), page.click('input[type=submit]')])
    const id = new URL(page.url()).searchParams.get('job')!
    assert.equal((await job(id)).printer, 'mk3a')
    const block = page.locator('#queue .qgroup', { hasText: 'One printer' })
    const row = block.locator('tr', { hasText: id })
    await row.locator('.where', { hasText: 'for printer mk3a' }).waitFor()
    assert.equal(await row.locator('.state').innerText(), 'waiting', 'the bed holds the last print')
    await row.getByRole('button', { name: `Remove job named.gcode (${id})` }).click()
    await page.click('#ask-ok')
    await block.waitFor({ state: 'detached' })
    assert.equal((await fetch(`${node.url}/api/v1/queue/${id}`)).status, 404)
    assert.equal(prints('named'), 0)
    assert.deepEqual(pageErrors, [])
  } finally { await page.close() }
})
