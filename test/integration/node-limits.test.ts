// Resources before trust: a node refuses what it will not take (no token, a full queue, too big)
// before it reads the body, holds little text in memory, times out clients that stop sending,
// cleans up after clients that hang up, and says when its disk is full.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request, type IncomingHttpHeaders } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { getJson, post, sleep, testNode, until, type TestNode } from '../helpers/node.js'
import { bin, ensureBuilt } from '../fixtures/client/harness.js'

const MiB = 1 << 20
const runFile = promisify(execFile)

interface Sent { status: number; text: string; headers: IncomingHttpHeaders; sentAtReply: number; total: number; error?: string }

interface UploadOptions {
  /** bytes of the file part (or of the text field, with asText) */
  size: number
  fields?: Record<string, string>
  headers?: Record<string, string>
  /** send Content-Length (else the body is chunked) */
  length?: boolean
  /** the payload as a text field fileIn0 rather than a file */
  asText?: boolean
  /** stop sending after this many bytes of payload and keep the connection open */
  stallAfter?: number
  /** hang up after this many bytes of payload */
  hangUpAfter?: number
  path?: string
}

/**
 * A multipart POST whose payload is generated as it is sent (never held whole): resolves with the
 * reply and how many bytes had been handed to the socket when the reply came.
 */
function upload (url: string, o: UploadOptions): Promise<Sent> {
  const boundary = 'rrcloudlimits' + Date.now()
  const part = (name: string, extra = '') => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"${extra}\r\n\r\n`
  const head = Buffer.from(Object.entries(o.fields ?? { service: 'echo' }).map(([k, v]) => `${part(k)}${v}\r\n`).join('') +
    (o.asText ? part('fileIn0') : part('fileIn0', '; filename="big.txt"') + ''))
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`)
  const total = head.length + o.size + tail.length
  const chunk = Buffer.alloc(64 << 10, 'rrcloud limits test line\n')
  const u = new URL(url)
  return new Promise((resolve) => {
    let sent = 0
    let payload = 0
    let reply: Sent | undefined
    const req = request({
      host: u.hostname, port: u.port, method: 'POST', path: o.path ?? '/api/v1/tasks',
      headers: {
        'content-type': `multipart/form-data; boundary=${boundary}`, accept: 'application/json',
        ...(o.length ? { 'content-length': String(total) } : {}), ...o.headers,
      },
    }, (res) => {
      reply = { status: res.statusCode ?? 0, text: '', headers: res.headers, sentAtReply: sent, total }
      res.setEncoding('utf8')
      res.on('data', (d: string) => { reply!.text += d })
      res.on('end', () => { req.destroy(); resolve(reply!) })
      res.on('error', () => resolve(reply!))
    })
    req.on('error', (e) => {
      if (!reply) resolve({ status: 0, text: '', headers: {}, sentAtReply: sent, total, error: e.message })
    })
    req.on('close', () => { if (!reply) resolve({ status: 0, text: '', headers: {}, sentAtReply: sent, total, error: 'closed' }) })
    const write = () => {
      if (sent === 0) { req.write(head); sent += head.length }
      while (!reply && !req.destroyed && payload < o.size) {
        if (o.stallAfter !== undefined && payload >= o.stallAfter) return
        if (o.hangUpAfter !== undefined && payload >= o.hangUpAfter) { req.destroy(); return }
        const n = Math.min(chunk.length, o.size - payload)
        payload += n
        sent += n
        if (!req.write(n === chunk.length ? chunk : chunk.subarray(0, n))) { req.once('drain', write); return }
        // a client reads what comes back while it sends: a loop that never yields would not
        if (payload % MiB === 0) { setImmediate(write); return }
      }
      if (!reply && !req.destroyed) { req.end(tail); sent += tail.length }
    }
    write()
  })
}

const files = (n: TestNode, dir: 'tmp' | 'in') => readdirSync(join(n.dataDir, 'tasks', dir))
const nothingKept = async (n: TestNode) => {
  await until(() => files(n, 'tmp').length === 0, 5000, 'tasks/tmp to be empty').catch(() => {})
  assert.deepEqual(files(n, 'tmp'), [], 'no upload is left in tasks/tmp')
  assert.deepEqual(files(n, 'in'), [], 'no input was stored')
  assert.equal(n.runner.list().length, 0, 'no task was stored')
}

test('without the token an upload is refused before it is read: 401 while the client still sends, nothing written', { timeout: 60_000 }, async () => {
  const node = await testNode({ token: 's3cret' })
  try {
    const r = await upload(node.url, { size: 200 * MiB })
    assert.equal(r.status, 401, r.error ?? r.text)
    assert.match(JSON.parse(r.text).error, /Authorization: Bearer TOKEN .*X-Rrcloud-Token: TOKEN or \?token=TOKEN; a token form field in the body does not count/)
    assert.ok(r.sentAtReply < r.total / 4, `the reply came after ${r.sentAtReply} of ${r.total} bytes`)
    await nothingKept(node)

    // curl's Expect: 100-continue gets the 401 without sending a byte of the file
    const big = join(node.dataDir, 'big.bin')
    writeFileSync(big, Buffer.alloc(5 * MiB, 1))
    const { stdout } = await runFile('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_upload}', '-F', 'service=echo', '-F', `fileIn0=@${big}`, `${node.url}/`])
    rmSync(big)
    const [code, uploaded] = stdout.split(' ').map(Number)
    assert.equal(code, 401)
    assert.ok(uploaded < MiB, `curl sent ${uploaded} bytes`)

    // the token counts in a header or the query, not as a form field
    assert.equal((await post(node.url, { service: 'echo', token: 's3cret' }, [['fileIn0', 'x', 'x.txt']])).status, 401)
    assert.equal((await post(node.url, { service: 'echo' }, [['fileIn0', 'x', 'x.txt']], { 'x-rrcloud-token': 's3cret' })).status, 201)
    const form = new FormData()
    form.append('service', 'echo')
    form.append('fileIn0', 'x')
    assert.equal((await fetch(`${node.url}/api/v1/tasks?token=s3cret`, { method: 'POST', body: form })).status, 201)
  } finally { await node.stop() }
})

test('outside --allow an upload is refused before it is read', { timeout: 60_000 }, async () => {
  const node = await testNode({ allow: ['10.0.0.0/8'] })
  try {
    const r = await upload(node.url, { size: 200 * MiB })
    assert.equal(r.status, 403, r.error ?? r.text)
    assert.ok(r.sentAtReply < r.total / 4, `the reply came after ${r.sentAtReply} of ${r.total} bytes`)
    assert.deepEqual(files(node, 'tmp'), [])
  } finally { await node.stop() }
})

test('--max-upload counts all the files of a task: by Content-Length before the body, else as it streams', { timeout: 60_000 }, async () => {
  const node = await testNode({ maxUpload: MiB })
  try {
    const declared = await upload(node.url, { size: 100 * MiB, length: true })
    assert.equal(declared.status, 413, declared.error ?? declared.text)
    assert.match(JSON.parse(declared.text).error, /over this node's limit of 1 MiB of uploads per task \(--max-upload\)/)
    // what the client wrote before it heard the reply: at most what the sockets' buffers on both sides
    // take in (a few MiB on loopback, more when the node is slow to be scheduled), never the 100 MiB
    assert.ok(declared.sentAtReply < 8 * MiB, `the reply came after ${declared.sentAtReply} bytes`)
    await nothingKept(node)

    const chunked = await upload(node.url, { size: 100 * MiB })
    assert.equal(chunked.status, 413, chunked.error ?? chunked.text)
    assert.ok(chunked.sentAtReply < 8 * MiB, `the reply came after ${chunked.sentAtReply} bytes`)
    await nothingKept(node)

    const two = await post(node.url, { service: 'echo' }, [['fileIn0', Buffer.alloc(600 << 10, 1), 'a.bin'], ['fileIn1', Buffer.alloc(600 << 10, 2), 'b.bin']])
    assert.equal(two.status, 413, 'two files of 600 KiB are over 1 MiB together')
    await nothingKept(node)
    assert.equal((await post(node.url, { service: 'echo' }, [['fileIn0', Buffer.alloc(600 << 10, 1), 'a.bin']])).status, 201)
  } finally { await node.stop() }
})

test('a full queue refuses before the upload; prints, with a queue of their own, are still taken', { timeout: 60_000 }, async () => {
  const node = await testNode({ maxQueue: 0 })
  try {
    const r = await upload(node.url, { size: 200 * MiB })
    assert.equal(r.status, 503, r.error ?? r.text)
    assert.match(JSON.parse(r.text).error, /^full: /)
    assert.ok(r.sentAtReply < r.total / 4, `the reply came after ${r.sentAtReply} of ${r.total} bytes`)
    await nothingKept(node)
  } finally { await node.stop() }

  // with a printer, the queue is known to matter once the service field has come
  const printing = await testNode({ maxQueue: 0, printers: [{ name: 'mk3', path: join(tmpdir(), 'rrcloud-no-such-tty') }] })
  try {
    const r = await upload(printing.url, { size: 200 * MiB })
    assert.equal(r.status, 503, r.error ?? r.text)
    assert.ok(r.sentAtReply < r.total / 4, `the reply came after ${r.sentAtReply} of ${r.total} bytes`)
    await nothingKept(printing)
    const print = await post(printing.url, { service: 'printrun' }, [['fileIn0', 'G28\nG1 X10 Y10\n', 'a.gcode']])
    assert.equal(print.status, 201, JSON.stringify(print.body))
  } finally { await printing.stop() }
})

test('text fields: 1 MiB each (413: send it as a file upload), 2 MiB and 256 fields a request', async () => {
  const node = await testNode()
  try {
    const ok = await post(node.url, { service: 'echo', fileIn0: 'a'.repeat(MiB) })
    assert.equal(ok.status, 201, 'exactly 1 MiB is taken')
    const big = await post(node.url, { service: 'echo', fileIn0: 'a'.repeat(MiB + 1) })
    assert.equal(big.status, 413)
    assert.match(big.body.error, /field fileIn0 is over 1 MiB: send it as a file upload/)
    for (const type of ['application/json', 'application/x-www-form-urlencoded']) {
      const body = type === 'application/json'
        ? JSON.stringify({ service: 'echo', fileIn0: 'a'.repeat(MiB + 1) })
        : `service=echo&fileIn0=${'a'.repeat(MiB + 1)}`
      const r = await fetch(`${node.url}/api/v1/tasks`, { method: 'POST', headers: { 'content-type': type }, body })
      assert.equal(r.status, 413, type)
      assert.match(((await r.json()) as { error: string }).error, /send it as a file upload/, type)
      const whole = await fetch(`${node.url}/api/v1/tasks`, { method: 'POST', headers: { 'content-type': type }, body: 'a'.repeat(5 * MiB) })
      assert.equal(whole.status, 413, `${type} body over 2 MiB`)
    }
    const many = await post(node.url, { service: 'echo', ...Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`fileIn${i}`, 'b'.repeat(900 << 10)])) })
    assert.equal(many.status, 413, '5 fields of 900 KiB are over 2 MiB together')
    assert.match(many.body.error, /over 2 MiB of text fields in one request: send large inputs as file uploads/)
    const fields = await post(node.url, { service: 'echo', ...Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`x${i}`, 'y'])) })
    assert.equal(fields.status, 413)
    assert.match(fields.body.error, /over 256 fields/)
    assert.deepEqual(files(node, 'tmp'), [])
    assert.equal(node.runner.list().length, 1)
  } finally { await node.stop() }
})

test('30 requests at once, each with a 31 MiB text field: 413 each, the node\'s peak RSS stays bounded (under 200 MB on Node 20)', { timeout: 120_000 }, async () => {
  ensureBuilt()
  const dir = mkdtempSync(join(tmpdir(), 'rrcloud-limits-rss-'))
  const proc = spawn(process.execPath, [bin('run.js'), 'node', '--no-mdns', '--port', '0', '--host', '127.0.0.1', '--data-dir', dir, '--slots', '1'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RRCLOUD_MDNS: 'off' } })
  let out = ''
  proc.stdout!.on('data', (d) => { out += d })
  proc.stderr!.on('data', (d) => { out += d })
  try {
    const url = await until(() => /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1], 20_000, `the node to listen: ${out}`)
    await fetch(`${url}/?service=meta`)
    const idleMiB = Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'))![1]) / 1024
    const replies = await Promise.all(Array.from({ length: 30 }, () => upload(url, { size: 31 * MiB, asText: true, length: true })))
    const peakMiB = Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'))![1]) / 1024
    console.log(`# node peak RSS ${peakMiB.toFixed(1)} MiB (idle ${idleMiB.toFixed(1)} MiB) after 30 × 31 MiB text fields; statuses ${[...new Set(replies.map((r) => r.status))].join(",")} ${replies.filter((r) => r.error).map((r) => `${r.error} after ${r.sentAtReply}`).join("; ")}`)
    for (const r of replies) {
      assert.equal(r.status, 413, r.error ?? r.text)
      assert.match(JSON.parse(r.text).error, /file upload/)
    }
    // the node's own share: an idle node is ~80 MiB on Node 20, ~94 MiB on Node 24 (2,335 MiB at the
    // peak before the caps); the share is ~60 MiB on Node 20 and 90 to 130 MiB on Node 24
    assert.ok(peakMiB - idleMiB < 160, `peak RSS ${peakMiB.toFixed(1)} MiB, ${idleMiB.toFixed(1)} MiB idle`)
    if (process.versions.node.startsWith('20.')) assert.ok(peakMiB * MiB < 200e6, `peak RSS ${peakMiB.toFixed(1)} MiB`)
  } finally {
    proc.kill('SIGTERM')
    await new Promise((resolve) => proc.once('exit', resolve))
    rmSync(dir, { recursive: true, force: true })
  }
})

test('timeouts: a stalled upload is closed after the idle time, with one line in the log; long polls and event streams stay open', { timeout: 60_000 }, async () => {
  const node = await testNode({ timeouts: { idle: 1000 } })
  const errors: unknown[] = []
  const consoleError = console.error
  console.error = (...a: unknown[]) => { errors.push(a) }
  try {
    const t0 = Date.now()
    const stalled = await upload(node.url, { size: 50 * MiB, stallAfter: 2 * MiB })
    assert.ok(stalled.status === 0 || stalled.status === 408, `the connection was closed (${stalled.status} ${stalled.error})`)
    assert.ok(Date.now() - t0 < 8000, `closed after ${Date.now() - t0} ms`)
    await nothingKept(node)
    await until(() => node.lines.some((l) => /cut off/.test(l)), 3000, 'the log line')
    assert.deepEqual(node.lines.filter((l) => /cut off|upload/.test(l)).map((l) => l.replace(/\d+ bytes/, 'N bytes')),
      ['upload from 127.0.0.1 cut off after N bytes: no data for 1 s'])

    // a long poll of 2.5 s and an events stream of 3 s outlive an idle time of 1 s
    const slow = await post(node.url, { service: 'slow' }, [['fileIn0', '3\n', 'a.txt']])
    assert.equal(slow.status, 201)
    const events = fetch(`${node.url}/api/v1/tasks/${slow.body.id}/events`).then((r) => r.text())
    const p0 = Date.now()
    const polled = await getJson(`${node.url}/api/v1/tasks/${slow.body.id}?wait=2.5`)
    assert.ok(Date.now() - p0 >= 2400, `the long poll returned after ${Date.now() - p0} ms`)
    assert.ok(['queued', 'busy'].includes(polled.status))
    const stream = await events
    assert.match(stream, /^: keepalive$/m)
    assert.match(stream, /"status": ?"complete"/)
    assert.deepEqual(errors, [], 'nothing on stderr')
  } finally {
    console.error = consoleError
    await node.stop()
  }
})

test('a client that hangs up mid-upload: one line in the log, no stack trace, no file left', { timeout: 60_000 }, async () => {
  const node = await testNode()
  const errors: unknown[] = []
  const consoleError = console.error
  console.error = (...a: unknown[]) => { errors.push(a) }
  try {
    for (const length of [true, false]) {
      node.lines.length = 0
      const r = await upload(node.url, { size: 50 * MiB, hangUpAfter: 3 * MiB, length })
      assert.equal(r.status, 0)
      await until(() => node.lines.some((l) => /cut off/.test(l)), 5000, 'the log line')
      await sleep(200)
      assert.deepEqual(node.lines.map((l) => l.replace(/\d+ bytes/, 'N bytes')), ['upload from 127.0.0.1 cut off after N bytes: the client hung up'])
      await nothingKept(node)
    }
    assert.deepEqual(errors, [], 'nothing on stderr')
  } finally {
    console.error = consoleError
    await node.stop()
  }
})

const root = process.getuid?.() === 0
test('on a full disk an upload gets 507 and leaves nothing behind', { skip: root ? false : 'needs root to mount a small tmpfs' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rrcloud-full-'))
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir])
  let node: TestNode | undefined
  try {
    node = await testNode({ dataDir: dir })
    const r = await upload(node.url, { size: 8 * MiB, length: true })
    assert.equal(r.status, 507, r.error ?? r.text)
    assert.match(JSON.parse(r.text).error, /^the node's disk is full/)
    await nothingKept(node)
    assert.equal((await post(node.url, { service: 'echo' }, [['fileIn0', 'small', 'a.txt']])).status, 201, 'room for a small one')
    // the disk full to the last byte: content sent as a string cannot be stored either
    const filler = join(dir, 'filler')
    try { execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k'], { stdio: 'ignore' }) } catch {}
    const text = await fetch(`${node.url}/`, { method: 'POST', body: new URLSearchParams({ service: 'echo', fileIn0: 'x'.repeat(200 << 10) }) })
    assert.equal(text.status, 507, await text.clone().text())
    assert.match(await text.text(), /error: the node's disk is full/)
    rmSync(filler)
  } finally {
    await node?.stop()
    execFileSync('umount', [dir])
    rmSync(dir, { recursive: true, force: true })
  }
})
