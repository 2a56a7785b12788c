// The result cache: the same work sent twice completes the second time from the first's result.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fixtures, getJson, sleep, testNode, testServices, until, waitTask, type TestNode } from '../helpers/node.js'

const run = promisify(execFile)
const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex')

let node: TestNode
let base: string
before(async () => {
  node = await testNode({ serviceDirs: [testServices, join(fixtures, 'cache-services')] })
  base = node.url
})
after(() => node.stop())

const json = (body: unknown) => ({ method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })
const put = (body: string | Buffer) => fetch(`${base}/api/v1/blobs/${sha(body)}`, { method: 'PUT', body })
const submit = async (body: unknown) => {
  const r = await fetch(`${base}/api/v1/tasks`, json(body))
  return { status: r.status, body: await r.json() as any }
}
const lookup = async (body: unknown) => await getJson(`${base}/api/v1/cache/lookup`, json(body))
const output = async (id: string) => Buffer.from(await (await fetch(`${base}/api/v1/tasks/${id}/output`)).arrayBuffer())
const logOf = async (id: string) => await (await fetch(`${base}/api/v1/tasks/${id}/log`)).text()
/** a client's way to know a result is in the cache: ask until it is */
const cachedSoon = (body: unknown) => until(async () => (await lookup(body)).hit, 10000, 'the result to be cached')

/** a model that takes openscad a while: a union of spheres (CGAL) */
const model = Buffer.from('union() { for (i = [0:3]) translate([i * 3, 0, 0]) sphere(r = 2, $fn = 20); }\n')
const task = { service: 'openscad', inputs: [{ sha256: sha(model), path: 'spheres.scad', size: model.length }] }

test('lookup says what is missing and how many bytes, then whether the result is known', async () => {
  const first = await lookup(task)
  assert.equal(first.hit, false)
  assert.match(first.key, /^[0-9a-f]{64}$/)
  assert.deepEqual(first.missing, [sha(model)])
  assert.equal(first.missingBytes, model.length, 'sizes the client gave')
  const { size: _size, ...bare } = task.inputs[0]
  assert.equal((await lookup({ ...task, inputs: [bare] })).missingBytes, undefined, 'not known: left out')
  assert.equal((await put(model)).status, 201)
  assert.deepEqual(await lookup(task), { hit: false, key: first.key, missing: [], missingBytes: 0 })
})

test('a cache hit: complete in the reply itself, cached names the task that ran, byte-identical output, openscad did not run', async (t) => {
  const t0 = performance.now()
  const a = await submit(task)
  assert.equal(a.status, 201, JSON.stringify(a.body))
  assert.equal(a.body.status, 'queued')
  const done = await waitTask(base, a.body.id, 60000)
  const ranMs = performance.now() - t0
  assert.equal(done.status, 'complete', done.error)
  assert.equal(done.cached, undefined)
  assert.ok(done.pid, 'the tool ran')
  await cachedSoon(task)

  const t1 = performance.now()
  const b = await submit(task)
  const hitMs = performance.now() - t1
  assert.equal(b.status, 201)
  assert.equal(b.body.status, 'complete', 'complete before the reply: no tool ran in between')
  assert.equal(b.body.cached, a.body.id)
  assert.equal(b.body.exitCode, 0)
  assert.equal(b.body.pid, undefined, 'no process')
  assert.equal(b.body.key, done.key)
  assert.equal(b.body.cmd, `openscad spheres.scad -o${b.body.id}.stl`)
  assert.equal(b.body.out, `tasks/out/${b.body.id}.stl`)
  assert.ok((await output(b.body.id)).equals(await output(a.body.id)), 'byte-identical output')
  assert.equal(await logOf(b.body.id), `cache hit: the result of task ${a.body.id} (same service, tool, command and files); openscad did not run\n`)
  assert.match(await logOf(a.body.id), /Top level object is a 3D object/)
  assert.ok(node.lines.includes(`task ${b.body.id} complete from the cache for 127.0.0.1: the result of task ${a.body.id}`), node.lines.join('\n'))
  assert.ok(!node.lines.some((l) => l.startsWith(`task ${b.body.id} busy`)), 'never busy')
  const info = await getJson(`${base}/?service=info&id=${b.body.id}&format=json`)
  assert.equal(info.cached, a.body.id)
  const text = await (await fetch(`${base}/?service=info&id=${b.body.id}`)).text()
  assert.match(text, new RegExp(`^cached: ${a.body.id}$`, 'm'))
  assert.ok(hitMs < ranMs / 3, `a hit (${hitMs.toFixed(1)} ms) is much faster than a run (${ranMs.toFixed(1)} ms)`)
  t.diagnostic(`openscad run: ${ranMs.toFixed(0)} ms submit to complete; cache hit: ${hitMs.toFixed(1)} ms submit to complete`)
  const meta = (await getJson(`${base}/api/v1/meta`)).store
  assert.ok(meta.hits >= 1 && meta.results >= 1, JSON.stringify(meta))
})

test('cache: false runs the tool again, and its result replaces the older one', async () => {
  await cachedSoon(task)
  const c = await submit({ ...task, cache: false })
  assert.equal(c.body.status, 'queued')
  const done = await waitTask(base, c.body.id, 60000)
  assert.equal(done.status, 'complete')
  assert.ok(done.pid)
  assert.equal(done.cached, undefined)
  await until(async () => (await submit(task)).body.cached === c.body.id, 10000, 'the newer result to be the cached one')
})

test('the seed\'s form hits the cache too: the same file under another name', async () => {
  const curl = async (...args: string[]) => JSON.parse((await run('curl', ['-sS', ...args], { cwd: fixtures })).stdout)
  const scad = readFileSync(join(fixtures, 'cube.scad'))
  const a = await curl('-F', 'service=openscad', '-F', 'fileIn0=@cube.scad', '-F', 'format=json', `${base}/`)
  assert.equal((await waitTask(base, a.id)).status, 'complete')
  await until(async () => (await lookup({ service: 'openscad', inputs: [{ sha256: sha(scad) }] })).hit, 10000, 'the result to be cached')
  const b = await curl('-F', 'service=openscad', '-F', `fileIn0=@cube.scad;filename=other-name.scad`, '-F', 'format=json', `${base}/`)
  assert.equal(b.status, 'complete')
  assert.equal(b.cached, a.id)
  assert.equal(b.in, `tasks/in/${b.id}-0.scad`, 'the seed\'s layout')
  assert.ok((await output(b.id)).equals(await output(a.id)))
  // content sent as a string is the same content
  const r = await fetch(`${base}/`, { method: 'POST', body: new URLSearchParams({ service: 'openscad', fileIn0: scad.toString(), format: 'json' }) })
  assert.equal(JSON.parse(await r.text()).cached, a.id)
  // and cache=no in a form runs it
  const c = await curl('-F', 'service=openscad', '-F', 'fileIn0=@cube.scad', '-F', 'cache=no', '-F', 'format=json', `${base}/`)
  assert.equal(c.status, 'queued')
})

test('echo caches; a descriptor with cache = no never does', async () => {
  const body = Buffer.from('same every time\n')
  await put(body)
  const echo = { service: 'echo', inputs: [{ sha256: sha(body) }] }
  const e1 = await submit(echo)
  await waitTask(base, e1.body.id)
  await until(async () => (await lookup(echo)).hit, 10000, 'echo cached')
  assert.equal((await submit(echo)).body.cached, e1.body.id)

  const nocache = { service: 'nocache', inputs: [{ sha256: sha(body) }] }
  const n1 = await submit(nocache)
  assert.equal(n1.body.key, undefined, 'no key: its results are not recorded')
  assert.equal((await waitTask(base, n1.body.id)).status, 'complete')
  await node.runner.idle()
  assert.equal((await lookup(nocache)).hit, false)
  const n2 = await submit(nocache)
  assert.equal(n2.body.status, 'queued')
  const done = await waitTask(base, n2.body.id)
  assert.equal(done.cached, undefined)
  assert.equal((await output(n2.body.id)).toString(), body.toString())
})

test('a failed task never enters the cache', async () => {
  const broken = Buffer.from('cube(1) this is not openscad\n')
  await put(broken)
  const bad = { service: 'openscad', inputs: [{ sha256: sha(broken) }] }
  const f1 = await submit(bad)
  assert.equal((await waitTask(base, f1.body.id, 60000)).status, 'failed')
  await node.runner.idle()
  assert.equal((await lookup(bad)).hit, false)
  const f2 = await submit(bad)
  assert.equal(f2.body.status, 'queued', 'it runs again')
  assert.equal((await waitTask(base, f2.body.id, 60000)).status, 'failed')
})

test('--cache-size bounds the store: least recently used blobs go, and a task whose input went still runs', async () => {
  const small = await testNode({ cacheSize: 4000 })
  try {
    const blob = (c: string) => Buffer.from(c.padEnd(1000, ' '))
    const putTo = (b: Buffer) => fetch(`${small.url}/api/v1/blobs/${sha(b)}`, { method: 'PUT', body: b })
    const missingThere = async (bs: Buffer[]) => (await getJson(`${small.url}/api/v1/blobs/missing`, json({ sha256: bs.map(sha) }))).missing
    // slow sleeps for the seconds its input says, then copies it
    const input = blob('1')
    assert.equal((await putTo(input)).status, 201)
    const t = await (await fetch(`${small.url}/api/v1/tasks`, json({ service: 'slow', inputs: [{ sha256: sha(input) }] }))).json() as any
    assert.equal(t.status, 'queued')
    const others = ['a', 'b', 'c', 'd'].map(blob)
    for (const b of others) {
      await sleep(5)
      assert.equal((await putTo(b)).status, 201)
    }
    assert.deepEqual(await missingThere([input]), [sha(input)], 'the oldest went')
    assert.deepEqual(await missingThere(others), [])
    assert.ok((await getJson(`${small.url}/api/v1/meta`)).store.bytes <= 4000)
    assert.ok(small.lines.some((l) => /^store: removed 1 least recently used blob\(s\) to stay within 4000 bytes/.test(l)), small.lines.join('\n'))
    const done = await waitTask(small.url, t.id)
    assert.equal(done.status, 'complete', done.error)
    assert.ok(existsSync(join(small.dataDir, done.in)), 'its input is a link of its own')
    assert.equal((await (await fetch(`${small.url}/api/v1/tasks/${t.id}/output`)).text()), input.toString())
    // its output enters the store in turn, and the least recently used of the others goes
    await small.runner.idle()
    assert.deepEqual(await missingThere([input, others[0]]), [sha(others[0])])
    // a blob over the whole store is refused
    const huge = Buffer.alloc(5000, 'h')
    const r = await putTo(huge)
    assert.equal(r.status, 413)
    assert.match((await r.json() as any).error, /--cache-size/)
  } finally { await small.stop() }
})
