import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { readdirSync, writeFileSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { basename, join } from 'node:path'
import { tmpdir } from 'node:os'
import { getJson, post, testNode, type TestNode } from '../helpers/node.js'

const run = promisify(execFile)
let node: TestNode

before(async () => { node = await testNode({ maxUpload: 1 << 20 }) })
after(() => node.stop())

const taskCount = async () => (await getJson(`${node.url}/api/v1/tasks`)).length
const inDir = () => readdirSync(join(node.dataDir, 'tasks/in')).length
const tmpDir = () => readdirSync(join(node.dataDir, 'tasks/tmp')).length

/** Runs fn and checks that no task and no file was added by it. */
async function unchanged<T> (fn: () => Promise<T>): Promise<T> {
  const before = [await taskCount(), inDir()]
  const r = await fn()
  assert.deepEqual([await taskCount(), inDir(), tmpDir()], [...before, 0], 'a refused request leaves nothing behind')
  return r
}

test('unknown service: 400 listing the services, in text for curl and in JSON', async () => {
  const { stdout } = await unchanged(() => run('curl', ['-sS', '-w', '\n%{http_code}', '-F', 'service=blender', '-F', 'fileIn0=x', `${node.url}/`]))
  const lines = stdout.trim().split('\n')
  assert.equal(lines.pop(), '400')
  assert.match(lines.join('\n'), /^error: unknown service blender; this node offers echo, openjscad, openscad, povray, slic3r, slow$/m)
  const r = await unchanged(() => post(node.url, { service: 'blender' }, [['fileIn0', 'x', 'x.blend']]))
  assert.equal(r.status, 400)
  assert.ok(r.body.services.includes('openscad'))
})

test('no service, and no input file: 400', async () => {
  const a = await unchanged(() => post(node.url, {}, [['fileIn0', 'x', 'x.scad']]))
  assert.equal(a.status, 400)
  assert.match(a.body.error, /no service given/)
  const b = await unchanged(() => post(node.url, { service: 'openscad' }))
  assert.equal(b.status, 400)
  assert.match(b.body.error, /no input: send fileIn0/)
  const c = await unchanged(() => post(node.url, { service: 'openscad' }, [['fileIn0', 'a', 'a.scad'], ['fileIn1', 'b', 'b.scad']]))
  assert.equal(c.status, 400)
  assert.match(c.body.error, /openscad takes 1 input\(s\), got 2/)
  const d = await unchanged(() => post(node.url, { service: 'echo' }, [['upload', 'a', 'a.txt']]))
  assert.equal(d.status, 400)
})

test('a prearg that does not fit argInput is refused, not ignored', async () => {
  for (const bad of ['; rm -rf /', '--post-process=', '--load', '--load=x']) {
    const r = await unchanged(() => post(node.url, { service: 'slic3r', prearg0: bad }, [['fileIn0', 'a', 'a.ini'], ['fileIn1', 'b', 'b.stl']]))
    assert.equal(r.status, 400, bad)
    assert.match(r.body.error, /prearg0 .* is not allowed for slic3r; allowed: --load=/)
  }
  const r = await unchanged(() => post(node.url, { service: 'openscad', prearg0: '-D' }, [['fileIn0', 'a', 'a.scad']]))
  assert.match(r.body.error, /takes no prearguments/)
  const orphan = await unchanged(() => post(node.url, { service: 'slic3r', prearg3: '--load=' }, [['fileIn0', 'a', 'a.stl']]))
  assert.match(orphan.body.error, /prearg3 has no fileIn3/)
})

test('an upload over the limit gets 413 and is not kept', async () => {
  const big = join(tmpdir(), `rrcloud-big-${process.pid}`)
  writeFileSync(big, Buffer.alloc(3 << 20, 1))
  try {
    const { stdout } = await unchanged(() => run('curl', ['-sS', '-w', '\n%{http_code}', '-F', 'service=echo', '-F', `fileIn0=@${big}`, `${node.url}/`]))
    const lines = stdout.trim().split('\n')
    assert.equal(lines.pop(), '413')
    assert.match(lines.join('\n'), new RegExp(`error: with ${basename(big)}, the uploads are over this node's limit of 1 MiB of uploads per task \\(--max-upload\\)`))
  } finally { rmSync(big) }
  // a small one right after is fine: nothing was left in a bad state
  assert.equal((await post(node.url, { service: 'echo' }, [['fileIn0', 'ok', 'ok.txt']])).status, 201)
})

test('unknown ids are 404 everywhere', async () => {
  for (const path of ['/?service=info&id=1-000000', '/api/v1/tasks/1-000000', '/api/v1/tasks/1-000000/log', '/api/v1/tasks/1-000000/output', '/tasks/log/1-000000', '/tasks/out/1-000000.stl', '/?service=info&id=nonsense']) {
    const r = await fetch(`${node.url}${path}`)
    assert.equal(r.status, 404, path)
  }
  assert.equal((await fetch(`${node.url}/api/v1/tasks/1-000000`, { method: 'DELETE' })).status, 404)
})

/** Sends a raw path (fetch and curl would normalise the dots away). */
const rawGet = (path: string) => new Promise<number>((resolve, reject) => {
  const u = new URL(node.url)
  request({ host: u.hostname, port: u.port, path }, (res) => { res.resume(); resolve(res.statusCode ?? 0) }).on('error', reject).end()
})

test('paths that try to leave the task folders are 404', async () => {
  const { body: t } = await post(node.url, { service: 'echo' }, [['fileIn0', 'secret', 's.txt']])
  for (const path of [
    '/tasks/out/../tasks.db', '/tasks/out/..%2ftasks.db', '/tasks/out/%2e%2e%2f%2e%2e%2fetc%2fpasswd', '/tasks/log/../../tasks.db',
    '/tasks/log/..%2F..%2Ftasks.db', '/tasks/in/' + t.id + '-0.txt', '/tasks.db', '/tasks/out/', '/tasks/out/.%2e/log/' + t.id,
    `/api/v1/tasks/..%2f..%2ftasks.db/output`, '/services/echo.conf', '/../../etc/passwd',
  ]) {
    assert.equal(await rawGet(path), 404, path)
  }
})

test('malformed bodies get 400/415 with a reason', async () => {
  const bad = await fetch(`${node.url}/api/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"service":' })
  assert.equal(bad.status, 400)
  assert.match(((await bad.json()) as { error: string }).error, /malformed JSON/)
  const trunc = await fetch(`${node.url}/`, { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=xyz' }, body: '--xyz\r\nContent-Disposition: form-data; name="service"\r\n\r\necho' })
  assert.equal(trunc.status, 400)
  const odd = await fetch(`${node.url}/`, { method: 'POST', headers: { 'content-type': 'application/x-tar' }, body: 'x' })
  assert.equal(odd.status, 415)
  const notif = await post(node.url, { service: 'echo', notifier: 'file:///etc/passwd' }, [['fileIn0', 'x', 'x.txt']])
  assert.equal(notif.status, 400)
  const get = await fetch(`${node.url}/?service=openscad`)
  assert.equal(get.status, 400)
})

test('outside --allow: 403; with --token: 401 without it, accepted with it', async () => {
  const closed = await testNode({ allow: ['10.0.0.0/8'] })
  try {
    const r = await fetch(`${closed.url}/?service=meta`)
    assert.equal(r.status, 403)
    assert.match(await r.text(), /127\.0\.0\.1 is not allowed here/)
  } finally { await closed.stop() }
  const locked = await testNode({ token: 's3cret' })
  try {
    const no = await post(locked.url, { service: 'echo' }, [['fileIn0', 'x', 'x.txt']])
    assert.equal(no.status, 401)
    const wrong = await post(locked.url, { service: 'echo' }, [['fileIn0', 'x', 'x.txt']], { authorization: 'Bearer nope' })
    assert.equal(wrong.status, 401)
    assert.equal((await getJson(`${locked.url}/api/v1/tasks`)).length, 0)
    const ok = await post(locked.url, { service: 'echo' }, [['fileIn0', 'x', 'x.txt']], { authorization: 'Bearer s3cret' })
    assert.equal(ok.status, 201)
    const field = await post(locked.url, { service: 'echo', token: 's3cret' }, [['fileIn0', 'x', 'x.txt']])
    assert.equal(field.status, 401, 'a token in the body comes too late: it does not count')
    assert.equal((await fetch(`${locked.url}/api/v1/tasks/${ok.body.id}`, { method: 'DELETE' })).status, 401)
    assert.equal((await fetch(`${locked.url}/api/v1/meta`)).status, 200, 'reading needs no token')
  } finally { await locked.stop() }
})

test('an upload named .. or with no name, and an empty input field: a clear 400, nothing stored', async () => {
  const part = (name: string) => `--XX\r\nContent-Disposition: form-data; name="service"\r\n\r\necho\r\n--XX\r\n` +
    `Content-Disposition: form-data; name="fileIn0"; filename="${name}"\r\nContent-Type: text/plain\r\n\r\nabc\r\n--XX--\r\n`
  for (const name of ['..', '.', 'a/../..']) {
    const r = await unchanged(() => fetch(`${node.url}/api/v1/tasks`, { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=XX' }, body: part(name) }))
    assert.equal(r.status, 400, name)
    assert.match((await r.json() as { error: string }).error, /^fileIn0 is an upload without a file name/)
  }
  // a browser's form with its file input left empty sends an empty field
  const empty = await unchanged(() => post(node.url, { service: 'echo', fileIn0: '' }))
  assert.equal(empty.status, 400)
  assert.match(empty.body.error, /^no input/)
  // a name with folders lends only its extension
  const ok = await fetch(`${node.url}/api/v1/tasks`, { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=XX' }, body: part('../../x.scad') })
  assert.equal(ok.status, 201)
  assert.match((await ok.json() as { in: string }).in, /^tasks\/in\/\d+-\d+-0\.scad$/)
})
