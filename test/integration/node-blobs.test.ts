// The content store: a client uploads only what a node lacks, names files by digest, and sends a
// task as a tree of files (a model with what it includes and imports).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fixtures, getJson, testNode, waitTask, type TestNode } from '../helpers/node.js'

const run = promisify(execFile)
const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex')
const project = join(fixtures, 'project')
const files = {
  main: readFileSync(join(project, 'main.scad')),
  lib: readFileSync(join(project, 'sub/lib.scad')),
  stl: readFileSync(join(project, 'parts/p.stl')),
}

let node: TestNode
let base: string
before(async () => {
  node = await testNode({ maxUpload: 64 << 10, token: 's3cret' })
  base = node.url
})
after(() => node.stop())

const auth = { authorization: 'Bearer s3cret' }
const json = (body: unknown, headers: Record<string, string> = {}) =>
  ({ method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...auth, ...headers } })
const missing = async (shas: string[]) => (await getJson(`${base}/api/v1/blobs/missing`, json({ sha256: shas }))).missing as string[]
const put = (body: string | Buffer, digest = sha(body), headers: Record<string, string> = auth) =>
  fetch(`${base}/api/v1/blobs/${digest}`, { method: 'PUT', body, headers })
const submit = async (body: unknown) => {
  const r = await fetch(`${base}/api/v1/tasks`, json(body))
  return { status: r.status, body: await r.json() as any }
}
const tmpFiles = () => readdirSync(join(node.dataDir, 'tasks/tmp'))
const store = async () => (await getJson(`${base}/api/v1/meta`)).store

/** The project rendered here, by openscad in a folder of its own, as a user would. */
async function renderLocally (): Promise<Buffer> {
  const dir = mkdtempSync(join(tmpdir(), 'rrcloud-local-'))
  try {
    cpSync(project, dir, { recursive: true })
    await run('openscad', ['-o', 'out.stl', 'main.scad'], { cwd: dir })
    return readFileSync(join(dir, 'out.stl'))
  } finally { rmSync(dir, { recursive: true, force: true }) }
}

test('upload only what is missing, then a task by digest; the store counts the bytes', async () => {
  const a = Buffer.from('cube(1); // ' + 'a'.repeat(100))
  const b = Buffer.from('cube(2); // ' + 'b'.repeat(200))
  const before = await store()
  assert.deepEqual(await missing([sha(a), sha(b), sha(a)]), [sha(a), sha(b)], 'each missing digest once, in order')
  const r = await put(a)
  assert.equal(r.status, 201)
  assert.equal(r.headers.get('location'), `/api/v1/blobs/${sha(a)}`)
  assert.deepEqual(await r.json(), { sha256: sha(a), size: a.length })
  assert.deepEqual(await missing([sha(a), sha(b)]), [sha(b)], 'only what is still missing')
  assert.equal((await put(a)).status, 200, 'a blob held already')
  // a client that waits for 100 Continue is answered without sending what the node has
  const held = await new Promise<{ status: number, continued: boolean }>((resolve, reject) => {
    let continued = false
    const req = request(`${base}/api/v1/blobs/${sha(a)}`, { method: 'PUT', headers: { ...auth, expect: '100-continue', 'content-length': String(a.length) } },
      (res) => { res.resume(); resolve({ status: res.statusCode!, continued }) })
    req.on('continue', () => { continued = true; req.end(a) })
    req.on('error', reject)
  })
  assert.deepEqual(held, { status: 200, continued: false })
  const after = await store()
  assert.equal(after.bytes - before.bytes, a.length)
  assert.equal(after.blobs - before.blobs, 1)
  assert.equal(after.limit, 2 * 2 ** 30, 'the default --cache-size')
  const got = await fetch(`${base}/api/v1/blobs/${sha(a)}`)
  assert.deepEqual(Buffer.from(await got.arrayBuffer()), a)
  assert.equal((await fetch(`${base}/api/v1/blobs/${sha(b)}`)).status, 404)

  // a task naming a blob the node lacks: 409 with what to upload; nothing is kept
  const task = { service: 'echo', inputs: [{ sha256: sha(a), path: 'a.scad' }, { sha256: sha(b) }] }
  const refused = await submit(task)
  assert.equal(refused.status, 409)
  assert.deepEqual(refused.body.missing, [sha(b)])
  assert.equal((await put(b)).status, 201)
  const ok = await submit(task)
  assert.equal(ok.status, 201, JSON.stringify(ok.body))
  assert.equal(ok.body.cmd, `cat a.scad ${ok.body.id}-1 > ${ok.body.id}`)
  const done = await waitTask(base, ok.body.id)
  assert.equal(done.status, 'complete', done.error)
  assert.equal(await (await fetch(`${base}/api/v1/tasks/${done.id}/output`)).text(), a.toString() + b.toString())
  assert.equal(done.in, `tasks/in/${done.id}/a.scad,tasks/in/${done.id}/${done.id}-1`)
  assert.deepEqual(readdirSync(join(node.dataDir, 'tasks/in')).filter((n) => n.startsWith(String(refused.body.id))), [])
})

test('a PUT needs the token; a digest that does not match the body, or one over --max-upload, keeps nothing', async () => {
  const body = Buffer.from('sphere(3);\n')
  assert.equal((await put(body, sha(body), {})).status, 401)
  const wrong = sha('something else')
  const r = await put(body, wrong)
  assert.equal(r.status, 400)
  assert.match((await r.json() as any).error, new RegExp(`SHA-256 is ${sha(body)}, not ${wrong}: nothing was kept`))
  assert.deepEqual(await missing([wrong, sha(body)]), [wrong, sha(body)])
  assert.equal((await put(body, 'not-a-digest')).status, 400)

  // over --max-upload (64 KiB here): told by Content-Length, before the body is read
  const big = Buffer.alloc(100 << 10, 'x')
  const tooBig = await put(big)
  assert.equal(tooBig.status, 413)
  assert.match((await tooBig.json() as any).error, /over this node's limit of 65536 bytes \(--max-upload\)/)
  // and counted as it comes when the body has no length (chunked)
  const chunked = await new Promise<number>((resolve, reject) => {
    const req = request(`${base}/api/v1/blobs/${sha(big)}`, { method: 'PUT', headers: auth }, (res) => { res.resume(); resolve(res.statusCode!) })
    // the node may close the connection while the rest is still being sent: the reply came first
    req.on('error', (e) => setTimeout(() => reject(e), 500))
    for (let i = 0; i < 10; i++) req.write(big.subarray(i * 10240, (i + 1) * 10240))
    req.end()
  })
  assert.equal(chunked, 413)
  assert.deepEqual(await missing([sha(big)]), [sha(big)])
  assert.deepEqual(tmpFiles(), [], 'no partial upload is left')
})

test('an upload cut off midway leaves nothing', async () => {
  const body = Buffer.alloc(40 << 10, 'y')
  await new Promise<void>((resolve) => {
    const req = request(`${base}/api/v1/blobs/${sha(body)}`, { method: 'PUT', headers: { ...auth, 'content-length': String(body.length) } })
    req.on('error', () => resolve())
    req.write(body.subarray(0, 10 << 10), () => setTimeout(() => { req.destroy(); resolve() }, 100))
  })
  await new Promise((resolve) => setTimeout(resolve, 200))
  assert.deepEqual(await missing([sha(body)]), [sha(body)])
  assert.deepEqual(tmpFiles(), [])
  assert.ok(node.lines.some((l) => /^upload from 127\.0\.0\.1 cut off after 10240 bytes/.test(l)), node.lines.join('\n'))
})

test('a bad path is refused with 400 that names it, in JSON and in forms; nothing is kept', async () => {
  const x = Buffer.from('cube(1);\n')
  await put(x)
  const bad = ['', '/etc/passwd', '../x.scad', 'a/../b.scad', './a.scad', 'a//b.scad', 'a/', 'a\\b.scad', 'a\u0000b', 'a\nb', 'a\u007fb',
    'x'.repeat(1025), 'a/'.repeat(32) + 'b', 'x'.repeat(256) + '/a.scad']
  const before = readdirSync(join(node.dataDir, 'tasks/in')).length
  for (const p of bad) {
    const r = await submit({ service: 'openscad', inputs: [{ sha256: sha(x), path: p }] })
    assert.equal(r.status, 400, `${JSON.stringify(p)}: ${JSON.stringify(r.body)}`)
    assert.ok(r.body.error.includes(`path ${JSON.stringify(p)}`), `${JSON.stringify(p)}: ${r.body.error}`)
    const f = await submit({ service: 'openscad', inputs: [{ sha256: sha(x) }], files: [{ sha256: sha(x), path: p }] })
    assert.equal(f.status, 400, `file ${JSON.stringify(p)}`)
  }
  // together: twice the same, a file where another needs a folder
  const clashes: Array<[string[], string]> = [
    [['m.scad', 'm.scad'], 'is given twice'],
    [['m.scad', 'lib', 'lib/x.scad'], 'puts a folder where "lib" is a file'],
    [['m.scad', 'lib/x.scad', 'lib'], 'is a folder of another file'],
  ]
  for (const [[main, ...others], why] of clashes) {
    const r = await submit({ service: 'openscad', inputs: [{ sha256: sha(x), path: main }], files: others.map((p) => ({ sha256: sha(x), path: p })) })
    assert.equal(r.status, 400)
    assert.match(r.body.error, new RegExp(why))
  }
  // the same checks for a form's pathN and its file parts (their file name is their path)
  const form = (fields: Record<string, string>, parts: Array<[string, string]>) => {
    const f = new FormData()
    f.append('service', 'openscad')
    f.append('fileIn0', new Blob([x]), 'm.scad')
    for (const [k, v] of Object.entries(fields)) f.append(k, v)
    for (const [name, content] of parts) f.append('file', new Blob([content]), name)
    return fetch(`${base}/api/v1/tasks`, { method: 'POST', body: f, headers: auth })
  }
  for (const [fields, parts, path] of [
    [{ path0: '../m.scad' }, [], '../m.scad'],
    [{ path0: 'm.scad' }, [['m.scad', 'again']], 'm.scad'],
    [{}, [['../../etc/x.scad', 'x']], '../../etc/x.scad'],
    [{}, [['/abs.scad', 'x']], '/abs.scad'],
  ] as Array<[Record<string, string>, Array<[string, string]>, string]>) {
    const r = await form(fields, parts)
    assert.equal(r.status, 400)
    assert.ok((await r.json() as any).error.includes(JSON.stringify(path)))
  }
  assert.equal(readdirSync(join(node.dataDir, 'tasks/in')).length, before, 'no input was kept')
  assert.deepEqual(tmpFiles(), [], 'no upload was kept')
})

test('a project by digests: main.scad includes sub/lib.scad and imports parts/p.stl, and renders as it does locally', async () => {
  const local = await renderLocally()
  const shas = [sha(files.main), sha(files.lib), sha(files.stl)]
  for (const m of await missing(shas)) {
    const body = [files.main, files.lib, files.stl][shas.indexOf(m)]
    assert.equal((await put(body)).status, 201)
  }
  const r = await submit({
    service: 'openscad',
    inputs: [{ sha256: sha(files.main), path: 'main.scad' }],
    files: [{ sha256: sha(files.lib), path: 'sub/lib.scad' }, { sha256: sha(files.stl), path: 'parts/p.stl' }],
  })
  assert.equal(r.status, 201, JSON.stringify(r.body))
  assert.equal(r.body.cmd, `openscad main.scad -o${r.body.id}.stl`)
  assert.deepEqual(r.body.files, ['sub/lib.scad', 'parts/p.stl'])
  const done = await waitTask(base, r.body.id, 60000)
  const log = await (await fetch(`${base}/api/v1/tasks/${done.id}/log`)).text()
  assert.equal(done.status, 'complete', log)
  const stl = Buffer.from(await (await fetch(`${base}/api/v1/tasks/${done.id}/output`)).arrayBuffer())
  assert.ok(stl.equals(local), 'the same STL as openscad renders locally')
  assert.equal((stl.toString().match(/facet normal/g) ?? []).length, (local.toString().match(/facet normal/g) ?? []).length)
  // the task's files are links of the store's blobs: one copy of the bytes
  const dir = join(node.dataDir, 'tasks/in', done.id)
  assert.equal(statSync(join(dir, 'parts/p.stl')).ino, statSync(join(node.dataDir, 'blobs', shas[2].slice(0, 2), shas[2])).ino)
})

test('without a sandbox the folder is links at the same paths, and the project renders the same', async () => {
  const local = await renderLocally()
  const plain = await testNode({ sandbox: 'none' })
  try {
    const f = new FormData()
    f.append('service', 'openscad')
    f.append('fileIn0', new Blob([files.main]), 'main.scad')
    f.append('file', new Blob([files.lib]), 'sub/lib.scad')
    f.append('file', new Blob([files.stl]), 'parts/p.stl')
    const t = await (await fetch(`${plain.url}/api/v1/tasks`, { method: 'POST', body: f })).json() as any
    assert.equal(t.cmd, `openscad ${t.id}-0.scad -o${t.id}.stl`, 'an input without a path is named after the task')
    assert.equal(t.in, `tasks/in/${t.id}/${t.id}-0.scad`)
    const done = await waitTask(plain.url, t.id, 60000)
    assert.equal(done.status, 'complete', done.error)
    assert.ok(Buffer.from(await (await fetch(`${plain.url}/api/v1/tasks/${t.id}/output`)).arrayBuffer()).equals(local))
  } finally { await plain.stop() }
})

test('a form with pathN and file parts makes the same project; its uploads enter the store', async () => {
  const local = await renderLocally()
  const f = new FormData()
  f.append('service', 'openscad')
  f.append('fileIn0', new Blob([files.main]), 'main.scad')
  f.append('path0', 'main.scad')
  f.append('file', new Blob([files.lib]), 'sub/lib.scad')
  f.append('file', new Blob([files.stl]), 'parts/p.stl')
  f.append('cache', 'no')
  const r = await fetch(`${base}/api/v1/tasks`, { method: 'POST', body: f, headers: auth })
  const t = await r.json() as any
  assert.equal(r.status, 201, JSON.stringify(t))
  assert.equal(t.status, 'queued', 'cache=no: the tool runs')
  assert.equal(t.in, `tasks/in/${t.id}/main.scad`)
  const done = await waitTask(base, t.id, 60000)
  assert.equal(done.status, 'complete', done.error)
  assert.ok(Buffer.from(await (await fetch(`${base}/api/v1/tasks/${t.id}/output`)).arrayBuffer()).equals(local))
  assert.deepEqual(await missing([sha(files.main), sha(files.lib), sha(files.stl)]), [])
  // retention: the task's folder goes, and so do blobs unused for as long
  assert.ok(node.runner.sweep(Date.now() + 25 * 3600e3) > 0)
  assert.ok(!existsSync(join(node.dataDir, 'tasks/in', t.id)))
  assert.equal((await missing([sha(files.main), sha(files.lib), sha(files.stl)])).length, 3)
  assert.equal((await store()).bytes, 0)
  assert.ok(node.lines.some((l) => /^retention: removed \d+ blob\(s\) unused since/.test(l)), node.lines.join('\n'))
})

test('the store survives a restart', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'rrcloud-blobs-'))
  try {
    const body = Buffer.from('kept across restarts\n')
    const first = await testNode({ dataDir })
    assert.equal((await fetch(`${first.url}/api/v1/blobs/${sha(body)}`, { method: 'PUT', body })).status, 201)
    const t = await (await fetch(`${first.url}/api/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ service: 'echo', inputs: [{ sha256: sha(body) }] }) })).json() as any
    await waitTask(first.url, t.id)
    await first.runner.idle()
    const stats = (await getJson(`${first.url}/api/v1/meta`)).store
    await first.stop()
    const second = await testNode({ dataDir })
    try {
      assert.deepEqual((await getJson(`${second.url}/api/v1/meta`)).store, stats)
      assert.deepEqual((await getJson(`${second.url}/api/v1/blobs/missing`, { method: 'POST', body: JSON.stringify({ sha256: [sha(body)] }) })).missing, [])
      assert.equal(await (await fetch(`${second.url}/api/v1/blobs/${sha(body)}`)).text(), body.toString())
      const again = await (await fetch(`${second.url}/api/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ service: 'echo', inputs: [{ sha256: sha(body) }] }) })).json() as any
      assert.equal(again.cached, t.id, 'the result cache too')
    } finally { await second.stop() }
  } finally { rmSync(dataDir, { recursive: true, force: true }) }
})

test('malformed requests to the store are 400', async () => {
  for (const body of ['{', '[]', '{"sha256":"abc"}', '{"sha256":["xyz"]}', JSON.stringify({ sha256: Array(10001).fill(sha('x')) }), '{"sha256":[],"more":1}']) {
    const r = await fetch(`${base}/api/v1/blobs/missing`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })
    assert.equal(r.status, 400, body.slice(0, 40))
  }
  for (const body of [{ service: 'openscad', inputs: [] }, { service: 'openscad', inputs: [{ sha256: 'x' }] }, { service: 'openscad', inputs: [{ sha256: sha('x') }], extra: 1 }]) {
    assert.equal((await submit(body)).status, 400, JSON.stringify(body))
    assert.equal((await fetch(`${base}/api/v1/cache/lookup`, json(body))).status, 400)
  }
})

test('--cache-size 0: no store, and tasks still run from forms', async () => {
  const off = await testNode({ cacheSize: 0 })
  try {
    assert.equal((await fetch(`${off.url}/api/v1/blobs/missing`, { method: 'POST', body: '{"sha256":[]}' })).status, 404)
    assert.equal((await fetch(`${off.url}/api/v1/blobs/${sha('x')}`, { method: 'PUT', body: 'x' })).status, 404)
    const f = new FormData()
    f.append('service', 'echo')
    f.append('fileIn0', 'hello')
    const t = await (await fetch(`${off.url}/api/v1/tasks`, { method: 'POST', body: f })).json() as any
    assert.equal((await waitTask(off.url, t.id)).status, 'complete')
    assert.deepEqual((await getJson(`${off.url}/api/v1/meta`)).store, { limit: 0, bytes: 0, blobs: 0, results: 0, hits: 0 })
    assert.ok(!existsSync(join(off.dataDir, 'blobs')))
  } finally { await off.stop() }
})
