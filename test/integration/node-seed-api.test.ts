import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { join } from 'node:path'
import { fixtures, testNode, waitTask, type TestNode } from '../helpers/node.js'

const run = promisify(execFile)
let node: TestNode
let base: string

/** The seed's own client: curl, as in its README. */
async function curl (...args: string[]) {
  const { stdout } = await run('curl', ['-sS', ...args], { cwd: fixtures, maxBuffer: 64 << 20, encoding: 'buffer' })
  return stdout
}
const fields = (text: string) => Object.fromEntries(text.trim().split('\n').map((l) => {
  const i = l.indexOf(': ')
  return [l.slice(0, i), l.slice(i + 2)]
}))

before(async () => {
  node = await testNode()
  base = node.url
})
after(() => node.stop())

test('every shipped tool is installed and offered (CI installs them; none may be skipped)', async () => {
  const meta = fields((await curl(`${base}/?service=meta`)).toString())
  assert.deepEqual(meta.services.split(',').filter((s: string) => s !== 'slow'), ['echo', 'openjscad', 'openscad', 'povray', 'slic3r'])
})

test('curl -F service=openscad -F fileIn0=@cube.scad gives a task, then a valid STL', async () => {
  const t = fields((await curl('-F', 'service=openscad', '-F', 'fileIn0=@cube.scad', `${base}/`)).toString())
  assert.match(t.id, /^\d+-\d{6}$/)
  assert.equal(t.service, 'openscad')
  assert.ok(['queued', 'busy'].includes(t.status))
  assert.match(t.cmd, new RegExp(`^openscad ${t.id}-0\\.scad -o${t.id}\\.stl$`))
  const done = await waitTask(base, t.id)
  assert.equal(done.status, 'complete', done.error)
  assert.equal(done.out, `tasks/out/${t.id}.stl`)
  const stl = (await curl(`${base}/${done.out}`)).toString()
  assert.match(stl, /^solid /)
  assert.equal((stl.match(/facet normal/g) ?? []).length, 12, 'a cube has 12 triangles')
  const log = (await curl(`${base}/tasks/log/${t.id}`)).toString()
  assert.match(log, /Top level object is a 3D object/)
})

test('slic3r with prearg0=--load= and a config gives G-code with real moves', async () => {
  const stl = (await curl('-F', 'service=openscad', '-F', 'fileIn0=@cube.scad', `${base}/?format=json`)).toString()
  const cube = await waitTask(base, JSON.parse(stl).id)
  const stlPath = join(node.dataDir, cube.out)
  const t = JSON.parse((await curl('-F', 'service=slic3r', '-F', 'prearg0=--load=', '-F', 'fileIn0=@slic3r.ini',
    '-F', `fileIn1=@${stlPath}`, '-F', 'format=json', `${base}/`)).toString())
  assert.match(t.cmd, /^slic3r --no-gui --load=\S+-0\.ini \S+-1\.stl --output=\S+\.gcode$/)
  assert.equal(t.in, `--load=tasks/in/${t.id}-0.ini,tasks/in/${t.id}-1.stl`)
  const done = await waitTask(base, t.id)
  assert.equal(done.status, 'complete', done.error)
  const gcode = (await curl(`${base}/${done.out}`)).toString()
  const moves = gcode.split('\n').filter((l) => /^G1 X[\d.]+ Y[\d.]+ E[\d.]+/.test(l))
  assert.ok(moves.length > 100, `expected extruding moves, got ${moves.length}`)
  assert.match(gcode, /; layer_height = 0\.3/, 'the uploaded config was used')
})

test('openjscad renders a v2 script to STL', async () => {
  const t = fields((await curl('-F', 'service=openjscad', '-F', 'fileIn0=@cube.jscad', `${base}/`)).toString())
  const done = await waitTask(base, t.id)
  assert.equal(done.status, 'complete', done.error)
  const stl = await curl(`${base}/${done.out}`)
  // binary STL: 80-byte header, triangle count, 50 bytes per triangle
  assert.equal(stl.readUInt32LE(80), 12)
  assert.equal(stl.length, 84 + 12 * 50)
})

test('povray renders a scene to PNG', async () => {
  const t = fields((await curl('-F', 'service=povray', '-F', 'fileIn0=@sphere.pov', `${base}/`)).toString())
  const done = await waitTask(base, t.id)
  assert.equal(done.status, 'complete', done.error)
  const png = await curl(`${base}/${done.out}`)
  assert.deepEqual([...png.subarray(1, 4)], [...Buffer.from('PNG')])
})

test('fileIn0 as a content string (jQuery $.post, urlencoded) and the JSON reply as text', async () => {
  const r = await fetch(`${base}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8', origin: 'http://192.168.1.20:8080' },
    body: new URLSearchParams({ service: 'openscad', fileIn0: 'sphere(r=5);', format: 'json' }),
  })
  assert.equal(r.status, 200)
  assert.equal(r.headers.get('access-control-allow-origin'), 'http://192.168.1.20:8080', 'a page from the LAN may read the reply')
  assert.match(r.headers.get('content-type') ?? '', /^text\/plain/, '$.parseJSON(data) needs a string')
  const task = JSON.parse(await r.text())
  assert.equal(task.service, 'openscad')
  assert.equal((await waitTask(base, task.id)).status, 'complete')
})

test('info: one task and all tasks, as text and as JSON', async () => {
  const t = fields((await curl('-F', 'service=echo', '-F', 'fileIn0=hello', `${base}/`)).toString())
  await waitTask(base, t.id)
  const one = fields((await curl(`${base}/?service=info&id=${t.id}`)).toString())
  for (const k of ['client', 'cmd', 'ctime', 'etime', 'id', 'in', 'out', 'pid', 'server', 'service', 'status']) assert.ok(k in one, `info lacks ${k}`)
  assert.equal(one.status, 'complete')
  assert.equal(one.client, '127.0.0.1')
  const keys = (await curl(`${base}/?service=info&id=${t.id}`)).toString().trim().split('\n').map((l) => l.split(':')[0])
  assert.deepEqual(keys, [...keys].sort(), 'keys sorted as the seed printed them')
  const json = JSON.parse((await curl(`${base}/?service=info&id=${t.id}&format=json`)).toString())
  assert.equal(json.id, t.id)
  const all = JSON.parse((await curl(`${base}/?service=info&format=json`)).toString())
  assert.ok(Array.isArray(all) && all.some((x: { id: string }) => x.id === t.id))
  const text = (await curl(`${base}/?service=info`)).toString()
  assert.ok(text.split('\n\n').length >= 2, 'records separated by blank lines')
  assert.equal((await curl(`${base}/tasks/out/${t.id}`)).toString(), 'hello')
})

test('meta has the seed fields and the slots', async () => {
  const meta = JSON.parse((await curl(`${base}/?service=meta&format=json`)).toString())
  for (const k of ['cpuLoad', 'maxDataRetention', 'serverName', 'services', 'tasks', 'timeout', 'uptime', 'version', 'slots', 'free', 'queue']) {
    assert.ok(k in meta, `meta lacks ${k}`)
  }
  assert.equal(meta.maxDataRetention, 24)
  assert.equal(meta.timeout, 1800)
  assert.equal(meta.slots, 2)
  assert.match(meta.uptime, /^\d+d \d\dh \d\dm \d\ds$/)
  assert.match(meta.version, /^rrcloud \d+\.\d+\.\d+/)
})

test('a browser gets an HTML page; CORS preflight is answered', async () => {
  const r = await fetch(`${base}/`, { headers: { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0', accept: 'text/html,*/*' } })
  assert.match(r.headers.get('content-type') ?? '', /^text\/html/)
  const html = await r.text()
  assert.match(html, /<table>/)
  assert.match(html, /<option>openscad<\/option>/)
  const pre = await fetch(`${base}/api/v1/tasks`, { method: 'OPTIONS', headers: { origin: 'http://printer.local', 'access-control-request-method': 'POST' } })
  assert.equal(pre.status, 204)
  assert.equal(pre.headers.get('access-control-allow-origin'), 'http://printer.local')
  assert.match(pre.headers.get('access-control-allow-methods') ?? '', /POST/)
})
