import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import type { Browser } from 'playwright-core'
import { testNode, until, waitTask, type TestNode } from '../helpers/node.js'
import { launchChromium, noChromium } from '../helpers/chromium.js'

// Real Chromium (Debian's `chromium`), pages served by a local server under two names that the
// browser maps to 127.0.0.1: evil.example stands for any web site, printer.local for a LAN page.
const skip = noChromium

let node: TestNode
let pages: Server
let pagePort: number
let browser: Browser

/** The page at every path: a script (or form) that talks to the node. */
const html = (body: string) => `<!doctype html><html><head><meta charset="utf-8"></head><body>${body}</body></html>`

before(async () => {
  if (skip) return
  node = await testNode()
  pages = createServer((req, res) => {
    res.setHeader('content-type', 'text/html')
    if (req.url === '/attack') {
      // the cross-site form post a page can make without any script permission: multipart, no preflight
      return res.end(html(`<form method="post" action="${node.url}/" enctype="multipart/form-data">
<input name="service" value="echo"><textarea name="fileIn0">from evil.example</textarea></form>
<script>document.forms[0].submit()</script>`))
    }
    res.end(html('<p>a page</p>'))
  }).listen(0, '127.0.0.1')
  await once(pages, 'listening')
  pagePort = (pages.address() as { port: number }).port
  // every other name fails: nothing the browser asks for leaves the machine
  browser = await launchChromium('MAP evil.example 127.0.0.1, MAP printer.local 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1')
})

after(async () => {
  await browser?.close()
  pages?.close()
  await node?.stop()
})

test('a cross-site page can neither create tasks with a form post nor read them with fetch', { skip, timeout: 90000 }, async () => {
  const before = node.runner.list().length
  const page = await browser.newPage()
  try {
    const answered = page.waitForResponse((r) => r.url().startsWith(node.url) && r.request().method() === 'POST')
    await page.goto(`http://evil.example:${pagePort}/attack`)
    const r = await answered
    assert.equal(r.status(), 403)
    assert.equal(r.request().headers().origin, `http://evil.example:${pagePort}`)
    await page.goto(`http://evil.example:${pagePort}/`)
    const read = await page.evaluate(async (url) => {
      const out: string[] = []
      try { out.push(JSON.stringify(await (await fetch(`${url}/api/v1/tasks`)).json())) } catch (e) { out.push(`blocked: ${(e as Error).name}`) }
      try { out.push(await (await fetch(`${url}/?service=info&format=json`)).text()) } catch (e) { out.push(`blocked: ${(e as Error).name}`) }
      const opaque = await fetch(`${url}/api/v1/tasks`, { mode: 'no-cors' })
      out.push(`opaque ${opaque.type} ${(await opaque.text()).length}`)
      const form = new FormData()
      form.append('service', 'echo')
      form.append('fileIn0', new Blob(['from evil.example']), 'x.txt')
      await fetch(`${url}/`, { method: 'POST', body: form, mode: 'no-cors' })
      return out
    }, node.url)
    assert.deepEqual(read, ['blocked: TypeError', 'blocked: TypeError', 'opaque opaque 0'])
    assert.equal(node.runner.list().length, before, 'no task was created')
  } finally { await page.close() }
})

test('a LAN page (printer.local) posts a task the seed\'s jQuery way and reads the reply', { skip, timeout: 90000 }, async () => {
  const page = await browser.newPage()
  try {
    await page.goto(`http://printer.local:${pagePort}/`)
    const got = await page.evaluate(async (url) => {
      // $.post(url, { service, fileIn0, format: 'json' }, (data) => $.parseJSON(data)) as XMLHttpRequest
      const posted = await new Promise<{ status: number; text: string }>((resolve) => {
        const x = new XMLHttpRequest()
        x.open('POST', `${url}/`)
        x.setRequestHeader('Content-Type', 'application/x-www-form-urlencoded; charset=UTF-8')
        x.onload = () => resolve({ status: x.status, text: x.responseText })
        x.onerror = () => resolve({ status: 0, text: 'network error' })
        x.send(new URLSearchParams({ service: 'echo', fileIn0: 'hello from the LAN', format: 'json' }).toString())
      })
      const task = JSON.parse(posted.text) as { id: string }
      const info = await (await fetch(`${url}/?service=info&id=${task.id}&format=json`)).text()
      const viaApi = await fetch(`${url}/api/v1/tasks`, { method: 'POST', body: (() => { const f = new FormData(); f.append('service', 'echo'); f.append('fileIn0', new Blob(['x']), 'x.txt'); return f })() })
      return { status: posted.status, task, info: JSON.parse(info) as { id: string }, api: viaApi.status, location: viaApi.headers.get('location') }
    }, node.url)
    assert.equal(got.status, 200)
    assert.equal(got.info.id, got.task.id)
    assert.equal(got.api, 201)
    assert.match(got.location ?? '', /^\/api\/v1\/tasks\/\d+-\d{6}$/, 'Location is exposed to the page')
    const done = await waitTask(node.url, got.task.id)
    assert.equal(done.status, 'complete')
    assert.equal(await (await fetch(`${node.url}/${done.out}`)).text(), 'hello from the LAN')
  } finally { await page.close() }
})

test("the node's own form: a submit lands on the task's page, and a reload does not submit again", { skip, timeout: 90000 }, async () => {
  const page = await browser.newPage()
  try {
    await page.goto(`${node.url}/`)
    await page.selectOption('select[name=service]', 'echo')
    await page.setInputFiles('input[name=fileIn0]', { name: 'part.txt', mimeType: 'text/plain', buffer: Buffer.from('from the form') })
    const count = node.runner.list().length
    await Promise.all([page.waitForURL(/\?service=info&id=\d+-\d{6}$/), page.click('input[type=submit]')])
    const id = new URL(page.url()).searchParams.get('id')!
    assert.ok((await page.content()).includes(id), 'the page shows the task')
    await page.reload()
    await until(() => node.runner.get(id).status === 'complete', 10000, 'the task')
    assert.equal(node.runner.list().length, count + 1, 'one task, however often the page is reloaded')
  } finally { await page.close() }
})
