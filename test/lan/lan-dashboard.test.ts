// The dashboard of one node showing the LAN: three real nodes in network namespaces, one with a
// (simulated Marlin) printer, and Chromium started inside the client's namespace, so that the page
// reaches the nodes at their LAN addresses as a browser on the LAN does. Screenshots of the page
// (desktop and phone) go to docs/screenshots/.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { netnsSkip, type LanHost } from '../helpers/netns.js'
import { startSimPty } from '../helpers/pty.js'
import { createNodeLan, root, until } from '../helpers/lan.js'
import { CHROMIUM, launchChromium, noChromium } from '../helpers/chromium.js'

const skip = netnsSkip('multi-host tests run in network namespaces')
const SHOTS = join(root, 'docs', 'screenshots')

/**
 * Chromium inside a host's namespace: playwright starts a small program that starts the browser
 * there through `ip netns exec`, passing on the pipe the browser is driven through (fds 3 and 4).
 */
async function browserIn (host: LanHost, dir: string): Promise<Browser> {
  const wrapper = join(dir, 'chromium-in-netns.mjs')
  writeFileSync(wrapper, `#!${process.execPath}
import { spawn } from 'node:child_process'
const child = spawn('ip', ['netns', 'exec', ${JSON.stringify(host.ns)}, ${JSON.stringify(CHROMIUM)}, ...process.argv.slice(2)], { stdio: ['inherit', 'inherit', 'inherit', 3, 4] })
for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(s, () => child.kill(s))
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
`)
  chmodSync(wrapper, 0o755)
  return await launchChromium('MAP * ~NOTFOUND, EXCLUDE 10.77.0.*', wrapper)
}

/** A print of about half a minute: heat, then many moves. */
function gcode (): string {
  const lines = ['M140 S60', 'M104 S210', 'M109 S210', 'M190 S60', 'G28', 'G90']
  for (let i = 0; i < 3000; i++) lines.push(`G1 X${(i % 100) + 10} Y${Math.floor(i / 100) + 10} E${(i / 50).toFixed(2)} F3000`)
  return lines.join('\n') + '\n'
}

test('the page on one node lists the LAN\'s three nodes, the printer of another and its print; a node killed leaves the page within 6 s', { skip: skip() || noChromium, timeout: 180_000 }, async (t) => {
  const sim = await startSimPty(['--heat-ms', '2000', '--delay-ms', '10'])
  const nl = await createNodeLan(3, 1)
  let browser: Browser | undefined
  try {
    const [alpha, beta, gamma] = await Promise.all([
      nl.startNode(nl.hosts[0], { name: 'alpha', slots: 2 }),
      nl.startNode(nl.hosts[1], { name: 'beta', slots: 1, printers: [`mk3=${sim.path},group=mk3`] }),
      nl.startNode(nl.hosts[2], { name: 'gamma', slots: 4 }),
    ])
    await until(async () => (await nl.http(`${alpha.url}/api/v1/peers`)).body.length === 2, 10_000, 'alpha to see the others')
    await until(async () => (await nl.http(`${beta.url}/api/v1/meta`)).body.printers?.[0]?.state === 'idle', 15_000, 'the printer to connect')
    // some work on the LAN: a print on beta, tasks on alpha and gamma
    const file = join(nl.dir, 'part.gcode')
    writeFileSync(file, gcode())
    const print = await nl.http(`${beta.url}/api/v1/tasks`, { method: 'POST', form: { service: 'printrun' }, files: { fileIn0: file } })
    assert.equal(print.status, 201, print.text)
    // two copies for the printer's group: they wait for it in beta's farm queue
    const job = await nl.http(`${beta.url}/api/v1/queue`, { method: 'POST', form: { group: 'mk3', copies: '2' }, files: { file } })
    assert.equal(job.status, 201, job.text)
    assert.equal((await nl.submitSlow(gamma, 60)).status, 201)
    // a pipeline gamma drives (sent as a form)
    const pipe = await nl.http(`${gamma.url}/api/v1/pipelines`, { method: 'POST', form: { stage1: 'echo' }, files: { 'stage1.in': file } })
    assert.equal(pipe.status, 201, pipe.text)
    assert.equal((await nl.http(`${alpha.url}/api/v1/tasks`, { method: 'POST', form: { service: 'echo', fileIn0: 'hello from alpha' } })).status, 201)

    browser = await browserIn(nl.client, nl.dir)
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
    const requests: string[] = []
    const errors: string[] = []
    page.on('request', (r) => requests.push(r.url()))
    page.on('pageerror', (e) => errors.push(e.message))
    await page.goto(`${alpha.url}/`)
    const rows = page.locator('#lan-rows tr')
    await until(async () => (await rows.count()) === 3, 10_000, 'three nodes on the page')
    for (const name of ['alpha', 'beta', 'gamma']) assert.equal(await rows.filter({ hasText: name }).count(), 1, name)
    assert.match(await rows.filter({ hasText: 'gamma' }).innerText(), /slow/, 'with their services')
    assert.match(await rows.filter({ hasText: 'gamma' }).innerText(), /\b[34] \/ 4\b/, 'free and slots')

    // beta's printer, live from beta's own events stream
    const card = page.locator('#printer-cards .printer', { hasText: 'mk3' })
    await card.locator('.state', { hasText: 'printing' }).waitFor({ timeout: 20_000 })
    assert.match(await card.innerText(), /on beta/)
    await card.locator('.temps', { hasText: 'Hotend 210.0 / 210' }).waitFor({ timeout: 20_000 })
    await card.locator('.job-text', { hasText: '%' }).waitFor({ timeout: 10_000 })
    // an action on another node's printer, from this node's page
    await card.getByRole('button', { name: 'Pause: mk3 on beta' }).click()
    await until(async () => (await nl.http(`${beta.url}/api/v1/tasks/${print.body.id}`)).body.status === 'paused', 10_000, 'the print paused from alpha\'s page')
    await card.getByRole('button', { name: 'Resume: mk3 on beta' }).click()
    await until(async () => (await nl.http(`${beta.url}/api/v1/tasks/${print.body.id}`)).body.status === 'busy', 10_000, 'printing again')
    await card.locator('.state', { hasText: 'printing' }).waitFor()
    // beta's queue, followed from alpha's page
    const queued = page.locator('#queue .qgroup', { hasText: 'Group mk3' }).locator('tr', { hasText: job.body.id })
    await queued.locator('.counts', { hasText: '2 waiting' }).waitFor({ timeout: 10_000 })
    assert.match(await queued.innerText(), /on beta/)

    // the LAN's tasks on request
    await page.getByRole('button', { name: "Show the LAN's tasks" }).click()
    const tasks = page.locator('#task-rows tr')
    await tasks.filter({ hasText: print.body.id }).waitFor({ timeout: 10_000 })
    await tasks.filter({ hasText: 'slow' }).filter({ hasText: 'gamma' }).waitFor({ timeout: 10_000 })
    // and their pipelines, marked with the node that drives them
    const pipes = page.locator('#pipeline-rows tr')
    await pipes.filter({ hasText: pipe.body.id }).filter({ hasText: 'on gamma' }).locator('td[data-label="State"] .state', { hasText: 'complete' }).waitFor({ timeout: 10_000 })
    await page.waitForTimeout(2500) // a few temperature readings for the graph
    mkdirSync(SHOTS, { recursive: true })
    await page.evaluate(() => window.scrollTo(0, 0))
    await page.screenshot({ path: join(SHOTS, 'dashboard-desktop.png'), fullPage: true })
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true })
    phone.on('pageerror', (e) => errors.push(e.message))
    await phone.goto(`${alpha.url}/`)
    await phone.locator('#printer-cards .printer .temps', { hasText: 'Hotend' }).waitFor({ timeout: 10_000 })
    await until(async () => (await phone.locator('#lan-rows tr').count()) === 3, 10_000, 'three nodes on the phone')
    assert.ok(await phone.evaluate(() => document.documentElement.scrollWidth <= 390), 'nothing wider than the phone')
    await phone.screenshot({ path: join(SHOTS, 'dashboard-phone.png') })
    await phone.close()

    const lan = [alpha, beta, gamma].map((n) => `${n.url}/`)
    assert.deepEqual(requests.filter((u) => !lan.some((base) => u.startsWith(base))), [], 'nothing asked of anyone but the LAN\'s nodes')

    const killedAt = Date.now()
    await gamma.stop('SIGKILL')
    await until(async () => (await rows.count()) === 2, 6000, 'gamma to leave the page', 50)
    const gone = Date.now() - killedAt
    assert.ok(gone <= 6000, `gone after ${gone} ms`)
    t.diagnostic(`a killed node left the page after ${gone} ms`)
    assert.equal(await rows.filter({ hasText: 'gamma' }).count(), 0)
    assert.equal(await tasks.filter({ hasText: 'gamma' }).count(), 0, 'its tasks go with it')
    assert.equal(await pipes.filter({ hasText: 'on gamma' }).count(), 0, 'and its pipelines')
    assert.deepEqual(errors, [])
  } finally {
    await browser?.close()
    await nl.close()
    await sim.stop()
  }
})
