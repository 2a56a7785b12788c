// Chains from the dashboard in real Chromium (Debian's `chromium`, driven by playwright-core): one
// node on loopback with the real openscad and slic3r and a simulated printer in group mk3. The page
// sends a model and a slicer config as one multipart form; the node drives openscad -> slic3r and
// queues the G-code for the group; the stages, their states and the job show on the page as they
// happen, without a reload, and a reload sends nothing again.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { launchChromium, noChromium } from '../helpers/chromium.js'
import { fixtures, getJson, root, testNode, until, type TestNode } from '../helpers/node.js'
import { startSimPty, type SimPty } from '../helpers/pty.js'

const skip = noChromium

let node: TestNode
let sim: SimPty
let browser: Browser
const pageErrors: string[] = []

before(async () => {
  execFileSync(process.execPath, [join(root, 'scripts', 'build-web.mjs')], { stdio: 'inherit' })
  sim = await startSimPty()
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

async function open (viewport = { width: 1280, height: 800 }): Promise<Page> {
  const page = await browser.newPage({ viewport })
  page.on('pageerror', (e) => pageErrors.push(e.message))
  await page.goto(`${node.url}/`)
  await page.locator('#lan-rows tr', { hasText: 'this node' }).waitFor()
  return page
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

test('a chain from the page: openscad -> slic3r -> group mk3; stages and completion show live; a reload sends nothing', { skip, timeout: 180000 }, async () => {
  const page = await open()
  try {
    // the model and the config, chosen with the file input; the chain, its printer group and copies by their labels
    await page.setInputFiles('#files-input', [
      { name: 'cube.scad', mimeType: 'text/plain', buffer: readFileSync(join(fixtures, 'cube.scad')) },
      { name: 'prusa.ini', mimeType: 'text/plain', buffer: readFileSync(join(fixtures, 'slic3r.ini')) },
    ])
    await page.locator('#submit-service').selectOption({ label: 'openscad → slic3r (→ print)' })
    const roles = page.locator('#file-list li')
    await until(async () => (await roles.count()) === 2 &&
      await roles.filter({ hasText: 'prusa.ini' }).locator('select').inputValue() === 'config' &&
      await roles.filter({ hasText: 'cube.scad' }).locator('select').inputValue() === 'input', 5000, 'the model and the config recognised')
    assert.ok(!await page.locator('#submit-node').isVisible(), 'a chain goes to this node, which drives it')
    await page.getByLabel('Print on').selectOption({ label: 'group mk3 (1 printer)' })
    await page.getByLabel('Copies').fill('2')
    assert.equal(await page.locator('#submit-form input[type=submit]').inputValue(), 'Send the chain')

    await record(page, 'stages', '#pipeline-rows tr .stages li')
    await page.evaluate(() => { (window as any).sameLoad = true })
    const before = (await getJson(`${node.url}/api/v1/pipelines`)).length
    await Promise.all([page.waitForURL(/\/ui\/\?pipeline=p\d+-\d{6}$/), page.click('input[type=submit]')])
    const id = new URL(page.url()).searchParams.get('pipeline')!
    assert.match(await page.locator('#submit-status').innerText(), new RegExp(`Pipeline ${id} \\(openscad → slic3r then 2 copies on group mk3\\) sent`))
    const row = page.locator('#pipeline-rows tr', { hasText: id })
    await row.waitFor()
    assert.equal(await row.getAttribute('aria-current'), 'true', 'the pipeline just sent is marked')

    // it completes, and the page shows it without a reload
    await row.locator('td[data-label=State] .state', { hasText: 'complete' }).waitFor({ timeout: 120000 })
    assert.equal(await page.evaluate(() => (window as any).sameLoad), true, 'the page was not reloaded')
    const p = await getJson(`${node.url}/api/v1/pipelines/${id}`)
    assert.equal(p.status, 'complete', p.error)
    assert.deepEqual(p.stages.map((s: any) => [s.service, s.state]), [['openscad', 'complete'], ['slic3r', 'complete']])
    const items = row.locator('.stages li')
    assert.equal(await items.count(), 3, 'two stages and the farm queue')
    assert.match(await items.nth(0).innerText(), new RegExp(`^openscad on ${p.stages[0].node}, task ${p.stages[0].task} complete`))
    assert.match(await items.nth(1).innerText(), /^slic3r on .* complete/)
    assert.match(await items.nth(2).innerText(), new RegExp(`farm queue group mk3, 2 copies job ${p.queue.job}`))
    const seen = await recorded(page, 'stages')
    assert.ok(seen.some((t) => /^slic3r .*(waiting|placing|queued|busy)/.test(t)), `slic3r was seen before it completed: ${seen.join(' | ')}`)
    assert.ok(seen.some((t) => /^farm queue .* waiting/.test(t)), `the farm queue was seen waiting: ${seen.join(' | ')}`)

    // the output link gives the G-code; the job is in the farm queue, named after the model
    const out = row.locator('a.out')
    assert.equal(await out.innerText(), p.stages[1].out)
    const gcode = await (await fetch(`${node.url}${await out.getAttribute('href')}`)).text()
    assert.match(gcode, /; layer_height = 0\.3/, 'sliced with the config sent')
    const job = await getJson(`${node.url}/api/v1/queue/${p.queue.job}`)
    assert.deepEqual([job.name, job.group, job.copies.length], ['cube.gcode', 'mk3', 2])
    await page.locator('#queue .qgroup', { hasText: 'Group mk3' }).locator('tr', { hasText: p.queue.job }).waitFor()
    // the first copy prints on the simulated printer, which then holds it until the bed is cleared
    const card = page.locator('#printer-cards .printer', { hasText: 'mk3a' })
    await card.locator('.bed', { hasText: 'the bed holds a print (cube.gcode)' }).waitFor({ timeout: 60000 })
    assert.ok(sim.log().some((l) => /^G1 /.test(l)), 'the printer got the moves')
    // times shown as times, in the browser's zone
    const created = await row.locator('td[data-label=Created]').innerText()
    assert.equal(created, await page.evaluate((t) => new Date(t * 1000).toLocaleTimeString(), p.ctime))

    await page.reload()
    await page.locator('#pipeline-rows tr.focus', { hasText: id }).waitFor()
    await page.waitForTimeout(500)
    assert.equal((await getJson(`${node.url}/api/v1/pipelines`)).length, before + 1, 'one pipeline, however often the page is reloaded')
    assert.deepEqual(pageErrors, [])
  } finally { await page.close() }
})

test('on a phone: the chain form and the pipelines fit, cancel works from the keyboard', { skip, timeout: 120000 }, async () => {
  const page = await open({ width: 390, height: 800 })
  try {
    await page.setInputFiles('#files-input', [{ name: 'slow.scad', mimeType: 'text/plain', buffer: readFileSync(join(fixtures, 'slow-render.scad')) }])
    await page.locator('#submit-service').selectOption({ label: 'openscad → slic3r (→ print)' })
    await page.locator('#file-list li', { hasText: 'slow.scad' }).waitFor()
    // the model alone: slic3r takes its defaults; nothing to print
    await Promise.all([page.waitForURL(/\/ui\/\?pipeline=p\d+-\d{6}$/), page.locator('#submit-form input[type=submit]').press('Enter')])
    const id = new URL(page.url()).searchParams.get('pipeline')!
    const row = page.locator('#pipeline-rows tr', { hasText: id })
    await row.locator('.stages li', { hasText: /^openscad .*busy/ }).waitFor({ timeout: 60000 })
    const width = await page.evaluate(() => document.documentElement.scrollWidth)
    assert.ok(width <= 390, `nothing wider than the phone: ${width}px`)
    const cancel = row.getByRole('button', { name: `Cancel pipeline ${id}` })
    await cancel.focus()
    await page.keyboard.press('Enter')
    await page.locator('#ask[open]').waitFor()
    await page.getByRole('button', { name: 'Cancel the pipeline' }).focus()
    await page.keyboard.press('Enter')
    await row.locator('td[data-label=State] .state', { hasText: 'cancelled' }).waitFor({ timeout: 30000 })
    assert.equal((await getJson(`${node.url}/api/v1/pipelines/${id}`)).status, 'cancelled')
    assert.ok(!await cancel.isVisible(), 'no cancel once it has ended')
    assert.deepEqual(pageErrors, [])
  } finally { await page.close() }
})
