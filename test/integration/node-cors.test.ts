import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http'
import { once } from 'node:events'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { testNode, waitTask, until, sleep, type TestNode } from '../helpers/node.js'

interface Raw { status: number; headers: IncomingHttpHeaders; body: string }

/** One request with exactly these headers (fetch would not send Host or Sec-Fetch-* as given). */
function raw (url: string, o: { method?: string; headers?: Record<string, string>; body?: string | Buffer; localAddress?: string } = {}): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: o.method ?? 'GET', headers: o.headers, localAddress: o.localAddress }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }))
    })
    req.on('error', reject)
    req.end(o.body)
  })
}

const form = (fields: Record<string, string>) => {
  const b = 'xXbOuNdArYx'
  const body = Object.entries(fields).map(([k, v]) => `--${b}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`).join('') + `--${b}--\r\n`
  return { body, type: `multipart/form-data; boundary=${b}` }
}

const BROWSER = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36', accept: 'text/html,application/xhtml+xml,*/*;q=0.8' }

/** An HTTP server on 127.0.0.1 that records the paths it is asked for. */
async function target (host = '127.0.0.1'): Promise<{ server: Server; port: number; hits: string[] }> {
  const hits: string[] = []
  const server = createServer((req, res) => { hits.push(req.url ?? ''); res.end('ok') }).listen(0, host)
  await once(server, 'listening')
  return { server, port: (server.address() as { port: number }).port, hits }
}

let node: TestNode
let base: string
let port: number
before(async () => {
  node = await testNode({ name: 'mynode' })
  base = node.url
  port = node.port
})
after(() => node.stop())

test('pages from the LAN get their origin back (not *), with Vary: Origin; requests without Origin pass without CORS headers', async () => {
  for (const origin of ['http://192.168.1.20:8080', 'http://10.1.2.3', 'http://[::1]:3000', 'http://localhost:5173', 'http://printer.local', 'https://octopi.local:443']) {
    const r = await raw(`${base}/?service=meta&format=json`, { headers: { origin } })
    assert.equal(r.status, 200, origin)
    assert.equal(r.headers['access-control-allow-origin'], origin, origin)
    assert.match(String(r.headers.vary), /Origin/i)
  }
  const plain = await raw(`${base}/?service=info`)
  assert.equal(plain.status, 200)
  assert.equal(plain.headers['access-control-allow-origin'], undefined)
})

test('pages from elsewhere get 403 naming --cors, and no CORS header to read it with', async () => {
  for (const origin of ['http://evil.example', 'https://8.8.8.8', 'http://[2001:db8::1]:8080', 'http://printer.local.evil.example', 'null', 'file://', 'chrome-extension://abcdef']) {
    for (const [method, path] of [['GET', '/?service=info'], ['GET', '/api/v1/tasks'], ['GET', '/tasks/log/1-000001'], ['POST', '/']]) {
      const r = await raw(`${base}${path}`, { method, headers: { origin } })
      assert.equal(r.status, 403, `${origin} ${method} ${path}`)
      assert.equal(r.headers['access-control-allow-origin'], undefined)
      assert.match(r.body, /--cors/)
    }
  }
})

test('a page served by the node itself is allowed under its own name, not under another name that resolves to it (DNS rebinding)', async () => {
  const own = await raw(`${base}/?service=info`, { method: 'POST', headers: { host: `mynode:${port}`, origin: `http://mynode:${port}` } })
  assert.notEqual(own.status, 403, own.body)
  assert.equal(own.headers['access-control-allow-origin'], `http://mynode:${port}`)
  const rebound = await raw(`${base}/`, { method: 'POST', headers: { host: `evil.example:${port}`, origin: `http://evil.example:${port}` } })
  assert.equal(rebound.status, 403)
  // a browser's same-origin GET carries no Origin, but Sec-Fetch-Site
  const get = await raw(`${base}/?service=info&format=json`, { headers: { host: `evil.example:${port}`, 'sec-fetch-site': 'same-origin' } })
  assert.equal(get.status, 403)
  assert.match(get.body, /--cors evil\.example/)
  const ok = await raw(`${base}/?service=info&format=json`, { headers: { host: `mynode.local:${port}`, 'sec-fetch-site': 'same-origin' } })
  assert.equal(ok.status, 200)
  const typed = await raw(`${base}/?service=info&format=json`, { headers: { host: `evil.example:${port}`, 'sec-fetch-site': 'none' } })
  assert.equal(typed.status, 200, 'an address typed in the browser bar is a plain request')
})

test('preflights are answered for allowed origins only', async () => {
  const ask = (origin: string, extra: Record<string, string> = {}) => raw(`${base}/api/v1/tasks`, {
    method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,authorization', ...extra },
  })
  const ok = await ask('http://192.168.1.20', { 'access-control-request-private-network': 'true' })
  assert.equal(ok.status, 204)
  assert.equal(ok.headers['access-control-allow-origin'], 'http://192.168.1.20')
  assert.match(String(ok.headers['access-control-allow-methods']), /POST/)
  assert.match(String(ok.headers['access-control-allow-headers']), /Authorization/i)
  assert.equal(ok.headers['access-control-allow-private-network'], 'true')
  const no = await ask('http://evil.example')
  assert.equal(no.status, 403)
  assert.equal(no.headers['access-control-allow-origin'], undefined)
  assert.equal(no.headers['access-control-allow-methods'], undefined)
})

test("a refused page's upload is not read: 403 at once, the connection closed, nothing stored", async () => {
  const before = node.runner.list().length
  const size = 1 << 30
  const head = Buffer.from('--b\r\nContent-Disposition: form-data; name="service"\r\n\r\necho\r\n' +
    '--b\r\nContent-Disposition: form-data; name="fileIn0"; filename="big.bin"\r\n\r\n')
  const req = request(`${base}/`, {
    method: 'POST',
    headers: { origin: 'http://evil.example', 'content-type': 'multipart/form-data; boundary=b', 'content-length': String(head.length + size) },
  })
  req.on('error', () => {})
  const started = Date.now()
  let status = 0
  let text = ''
  const answered = new Promise<void>((resolve) => req.on('response', (res) => {
    status = res.statusCode ?? 0
    res.on('data', (c: Buffer) => { text += c.toString() })
    res.on('end', resolve)
    res.on('error', () => resolve())
  }))
  let sent = 0
  let done = false
  void answered.then(() => { done = true })
  req.write(head)
  const chunk = Buffer.alloc(1 << 20, 'a')
  while (!done && sent < size && Date.now() - started < 15000 && !req.destroyed) {
    sent += chunk.length
    if (!req.write(chunk)) await Promise.race([once(req, 'drain'), answered, sleep(200)])
  }
  await Promise.race([answered, sleep(2000)])
  req.destroy()
  assert.equal(status, 403, `answered ${status} after ${Date.now() - started} ms, ${sent >> 20} MiB sent`)
  assert.match(text, /evil\.example.*--cors/)
  assert.ok(Date.now() - started < 5000, `answered in ${Date.now() - started} ms`)
  assert.ok(sent < 256 << 20, `${sent >> 20} MiB were sent before the answer`)
  assert.equal(node.runner.list().length, before, 'no task')
  assert.deepEqual(readdirSync(join(node.dataDir, 'tasks', 'tmp')), [], 'no partial upload')
})

test('--cors: listed origins and host names, * for any page, null only when listed', async () => {
  const n = await testNode({ cors: ['https://dash.example.org', 'octopi', 'null'] })
  const star = await testNode({ cors: ['*'] })
  try {
    const st = async (url: string, origin: string) => (await raw(`${url}/api/v1/tasks`, { headers: { origin } })).status
    assert.equal(await st(n.url, 'https://dash.example.org'), 200)
    assert.equal(await st(n.url, 'http://octopi:5000'), 200)
    assert.equal(await st(n.url, 'null'), 200)
    assert.equal(await st(n.url, 'https://dash.example.org:8443'), 403)
    assert.equal(await st(n.url, 'http://evil.example'), 403)
    assert.equal(await st(n.url, 'http://192.168.0.4'), 200, 'the LAN still')
    assert.equal(await st(star.url, 'http://evil.example'), 200)
    assert.equal((await raw(`${star.url}/api/v1/tasks`, { headers: { origin: 'https://x.example' } })).headers['access-control-allow-origin'], 'https://x.example')
    assert.equal(await st(star.url, 'null'), 403)
    await assert.rejects(testNode({ cors: ['http://x.example/path'] }), /--cors/)
  } finally {
    await n.stop()
    await star.stop()
  }
})

test('with a token, notifier URLs are shown only to requests that carry it', async () => {
  const n = await testNode({ token: 's3cret' })
  try {
    const secret = 'http://127.0.0.1:1/hook?key=hunter2'
    const auth = { authorization: 'Bearer s3cret' }
    const created = await fetch(`${n.url}/api/v1/tasks`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ service: 'echo', fileIn0: 'x', notifier: secret }) })
    assert.equal(created.status, 201)
    const t = await created.json() as { id: string; notifier?: string }
    assert.equal(t.notifier, secret, 'the submitter sees it')
    await waitTask(n.url, t.id)
    const readers: Array<[string, Record<string, string>]> = [
      [`/api/v1/tasks`, {}], [`/api/v1/tasks/${t.id}`, {}], [`/api/v1/tasks/${t.id}/events`, {}],
      [`/?service=info`, {}], [`/?service=info&id=${t.id}`, {}], [`/?service=info&format=json`, {}], [`/`, BROWSER],
      [`/api/v1/tasks/${t.id}?token=wrong`, {}], [`/api/v1/tasks`, { authorization: 'Bearer nope' }],
    ]
    for (const [path, headers] of readers) {
      const r = await raw(`${n.url}${path}`, { headers })
      assert.equal(r.status, 200, path)
      assert.ok(r.body.includes(t.id), `${path} shows the task`)
      assert.ok(!r.body.includes('hunter2'), `${path} hides the notifier`)
    }
    for (const [path, headers] of [[`/api/v1/tasks`, auth], [`/?service=info&id=${t.id}&token=s3cret`, {}], [`/api/v1/tasks/${t.id}/events`, { 'x-rrcloud-token': 's3cret' }]] as Array<[string, Record<string, string>]>) {
      const r = await raw(`${n.url}${path}`, { headers })
      assert.ok(r.body.includes('hunter2'), `${path} with the token shows the notifier`)
    }
  } finally { await n.stop() }
  // without a token there is nothing to check: everyone sees it, as before
  const open = await raw(`${base}/api/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ service: 'echo', fileIn0: 'x', notifier: 'http://127.0.0.1:1/open' }) })
  const id = JSON.parse(open.body).id as string
  assert.equal(JSON.parse((await raw(`${base}/api/v1/tasks/${id}`)).body).notifier, 'http://127.0.0.1:1/open')
})

test('the browser form is answered 303 to the task page (Post/Redirect/Get); curl, jQuery and format=json are not', async () => {
  const f = form({ service: 'echo', fileIn0: 'hello' })
  const r = await raw(`${base}/`, { method: 'POST', headers: { ...BROWSER, origin: base, 'content-type': f.type }, body: f.body })
  assert.equal(r.status, 303)
  const m = /^\/\?service=info&id=(\d+-\d{6})$/.exec(String(r.headers.location))
  assert.ok(m, String(r.headers.location))
  assert.equal(node.runner.get(m[1]).service, 'echo')
  const page = await raw(`${base}${r.headers.location}`, { headers: BROWSER })
  assert.equal(page.status, 200)
  assert.match(page.headers['content-type'] ?? '', /text\/html/)
  assert.ok(page.body.includes(m[1]))
  const forced = await raw(`${base}/`, { method: 'POST', ...(() => { const g = form({ service: 'echo', fileIn0: 'x', format: 'html' }); return { headers: { 'content-type': g.type }, body: g.body } })() })
  assert.equal(forced.status, 303)
  const curl = await raw(`${base}/`, { method: 'POST', headers: { 'content-type': f.type }, body: f.body })
  assert.equal(curl.status, 200)
  assert.match(curl.body, /^id: \d+-\d{6}$/m)
  const jq = await raw(`${base}/`, { method: 'POST', headers: { ...BROWSER, accept: '*/*', origin: 'http://192.168.1.20', 'content-type': 'application/x-www-form-urlencoded' }, body: 'service=echo&fileIn0=x&format=json' })
  assert.equal(jq.status, 200)
  assert.equal(JSON.parse(jq.body).service, 'echo')
  const json = await raw(`${base}/`, { method: 'POST', headers: { ...BROWSER, 'content-type': 'application/x-www-form-urlencoded' }, body: 'service=echo&fileIn0=x&format=json' })
  assert.equal(json.status, 200)
})

test('a method a known path does not take is 405 with Allow; unknown paths stay 404', async () => {
  for (const [method, path, allow] of [['PUT', '/', /GET.*POST|POST.*GET/], ['PATCH', '/api/v1/tasks', /GET.*POST|POST.*GET/], ['DELETE', '/api/v1/meta', /GET/], ['POST', '/tasks/log/1-000001', /GET/]] as const) {
    const r = await raw(`${base}${path}`, { method })
    assert.equal(r.status, 405, `${method} ${path}`)
    assert.match(String(r.headers.allow), allow)
    assert.match(r.body, /not supported/)
  }
  assert.match(String((await raw(`${base}/api/v1/tasks/1-000001`, { method: 'PUT' })).headers.allow), /DELETE/)
  const opt = await raw(`${base}/api/v1/tasks`, { method: 'OPTIONS' })
  assert.equal(opt.status, 204)
  assert.match(String(opt.headers.allow), /POST/)
  assert.equal((await raw(`${base}/nothing/here`, { method: 'PUT' })).status, 404)
})

test('a JSON field whose value is an object or an array is 400, and nothing is stored', async () => {
  const count = node.runner.list().length
  for (const fileIn0 of [{ a: 1 }, ['x'], null]) {
    const r = await raw(`${base}/api/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ service: 'echo', fileIn0 }) })
    assert.equal(r.status, 400, JSON.stringify(fileIn0))
    assert.match(JSON.parse(r.body).error, /fileIn0/)
  }
  assert.equal(node.runner.list().length, count)
  const ok = await raw(`${base}/api/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ service: 'echo', fileIn0: 42 }) })
  assert.equal(ok.status, 201)
})

test('a notifier on a link-local or metadata address is 400 at submit time', async () => {
  const count = node.runner.list().length
  for (const url of ['http://169.254.169.254/latest/meta-data/', 'http://0xa9fea9fe/', 'http://[fe80::1]/x', 'http://[::ffff:169.254.169.254]/', 'http://100.100.100.200/latest']) {
    const r = await raw(`${base}/api/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ service: 'echo', fileIn0: 'x', notifier: url }) })
    assert.equal(r.status, 400, url)
    assert.match(JSON.parse(r.body).error, /notifier refused: .*link-local or cloud metadata/)
  }
  assert.equal(node.runner.list().length, count)
})

test('notifiers: called on an allowed address, by name too; refused, with nothing sent, outside a non-default --allow', async () => {
  const t = await target()
  // only 127.0.0.2 may connect, so loopback's 127.0.0.1 is outside the node's LAN
  const narrow = await testNode({ allow: ['127.0.0.2/32'] })
  const via = { localAddress: '127.0.0.2' }
  try {
    const submit = (url: string, notifier: string) => raw(`${url}/api/v1/tasks`, { ...via, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ service: 'echo', fileIn0: 'x', notifier }) })
    // the default --allow: loopback is fine, by address and by name (resolved, then pinned)
    const a = JSON.parse((await submit(base, `http://127.0.0.1:${t.port}/ip?$id`)).body)
    const b = JSON.parse((await submit(base, `http://localhost:${t.port}/name?$id`)).body)
    await until(() => t.hits.includes(`/ip?${a.id}`) && t.hits.includes(`/name?${b.id}`), 10000, 'both notifiers')
    // a non-default --allow: an address outside it is 400; a name that resolves outside it is refused when sent
    const literal = await submit(narrow.url, `http://127.0.0.1:${t.port}/literal`)
    assert.equal(literal.status, 400)
    assert.match(JSON.parse(literal.body).error, /outside the node's --allow/)
    const named = await submit(narrow.url, `http://localhost:${t.port}/named?$id`)
    assert.equal(named.status, 201, named.body)
    const id = JSON.parse(named.body).id as string
    await until(() => narrow.lines.some((l) => l.includes(`/named?${id} refused`)), 10000, 'the refusal to be logged')
    await sleep(300)
    assert.equal(narrow.lines.filter((l) => l.includes(`/named?${id}`)).length, 1, 'one line')
    assert.match(narrow.lines.find((l) => l.includes(`/named?${id}`))!, /localhost resolves to .* outside the node's --allow; nothing sent/)
    assert.ok(!t.hits.some((h) => h.startsWith('/named') || h.startsWith('/literal')), `the target was hit: ${t.hits.join(' ')}`)
    // $myip is the client, inside --allow: called
    const me = await target('127.0.0.2')
    try {
      const c = JSON.parse((await submit(narrow.url, `http://$myip:${me.port}/me?$id`)).body)
      await until(() => me.hits.includes(`/me?${c.id}`), 10000, 'the $myip notifier')
    } finally { me.server.close() }
  } finally {
    await narrow.stop()
    t.server.close()
  }
})
