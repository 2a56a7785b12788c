// Pipelines sent as multipart forms (POST /api/v1/pipelines, multipart/form-data), as a page on
// plain http sends them: one node on loopback with the real openscad and slic3r and a simulated
// printer in group mk3. The node hashes the files into its store and drives the same pipeline the
// JSON API creates; a bad form is refused with 400 naming the field, and leaves no file behind.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { fixtures, getJson, testNode, until, type TestNode } from '../helpers/node.js'
import { startSimPty, type SimPty } from '../helpers/pty.js'
import { expectedCommands, printedCommands } from '../helpers/sliced.js'

let node: TestNode
let sim: SimPty

before(async () => {
  sim = await startSimPty()
  node = await testNode({
    printers: [{ name: 'mk3a', path: sim.path, groups: ['mk3'] }],
    printerOptions: { settleMs: 50, temperatureIntervalMs: 200, safeTimeoutMs: 1000, reconnectMs: 100 },
    farm: { everyMs: 200 },
  })
  await until(async () => (await getJson(`${node.url}/api/v1/printers`))[0]?.connection === 'idle', 10000, 'the printer to connect')
})
after(async () => {
  await node?.stop()
  await sim?.stop()
})

const fixture = (name: string) => readFileSync(join(fixtures, name))
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')
type Part = [name: string, value: string] | [name: string, content: Buffer, filename: string]

/** A multipart body written out by hand, as `curl -F name=value -F name=@file` sends it. */
function post (parts: Part[], path = '/api/v1/pipelines'): Promise<{ status: number, headers: Record<string, unknown>, body: any }> {
  const boundary = `------------------------${randomBytes(12).toString('hex')}`
  const chunks: Buffer[] = []
  for (const p of parts) {
    const disposition = p.length === 3 ? `form-data; name="${p[0]}"; filename="${p[2]}"` : `form-data; name="${p[0]}"`
    const type = p.length === 3 ? 'Content-Type: application/octet-stream\r\n' : ''
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${type}\r\n`), Buffer.from(p[1]), Buffer.from('\r\n'))
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`))
  const body = Buffer.concat(chunks)
  return new Promise((resolve, reject) => {
    const req = request(`${node.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': body.length, accept: '*/*', 'user-agent': 'curl/8.5.0' },
    }, (res) => {
      const got: Buffer[] = []
      res.on('data', (c: Buffer) => got.push(c))
      res.on('end', () => {
        const text = Buffer.concat(got).toString('utf8')
        let json: unknown
        try { json = JSON.parse(text) } catch { json = text }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: json })
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}

const ended = (id: string) => until(async () => {
  const p = await getJson(`${node.url}/api/v1/pipelines/${id}?wait=10`)
  return p.status !== 'running' ? p : undefined
}, 120_000, `pipeline ${id} to end`)
const tmpFiles = () => readdirSync(join(node.dataDir, 'tasks', 'tmp'))

test('a form of openscad -> slic3r: the files go into the store, the pipeline runs, its G-code is sliced with the config sent', { timeout: 150_000 }, async () => {
  const scad = fixture('cube.scad')
  const ini = fixture('slic3r.ini')
  const r = await post([['stage1', 'openscad'], ['stage1.in', scad, 'cube.scad'], ['stage2', 'slic3r'], ['stage2.config', ini, 'slic3r.ini']])
  assert.equal(r.status, 201, JSON.stringify(r.body))
  assert.match(r.body.id, /^p\d+-\d{6}$/)
  assert.equal(r.headers.location, `/api/v1/pipelines/${r.body.id}`)
  assert.deepEqual(r.body.stages.map((s: any) => s.service), ['openscad', 'slic3r'])
  // the files are in the content store, by the digests of what was sent
  const missing = await getJson(`${node.url}/api/v1/blobs/missing`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sha256: [sha(scad), sha(ini)] }) })
  assert.deepEqual(missing.missing, [])
  const p = await ended(r.body.id)
  assert.equal(p.status, 'complete', p.error)
  assert.deepEqual(p.stages.map((s: any) => [s.service, s.state]), [['openscad', 'complete'], ['slic3r', 'complete']])
  // slic3r got the STL under the model's name, and the config with --load=
  const slicing = node.runner.get(p.stages[1].task)
  assert.deepEqual(slicing.in.map((i: any) => [i.name ?? i.path, i.prearg ?? '']).map(([n, a]: string[]) => [n.split('/').pop(), a]), [['slic3r.ini', '--load='], ['cube.stl', '']])
  const out = await fetch(`${node.url}/api/v1/pipelines/${p.id}/stages/2/output`)
  assert.equal(out.status, 200)
  assert.match(await out.text(), /; layer_height = 0\.3/, 'the config sent was used')
  assert.deepEqual(tmpFiles(), [], 'no upload is left in tasks/tmp')
})

test('a form with a group and copies: the G-code becomes a job of the farm queue, named after the model', { timeout: 150_000 }, async () => {
  const r = await post([
    ['stage1', 'openscad'], ['stage1.in', fixture('project/main.scad'), 'main.scad'],
    ['stage1.file', fixture('project/sub/lib.scad'), 'sub/lib.scad'], ['stage1.file', fixture('project/parts/p.stl'), 'parts/p.stl'],
    ['stage2', 'slic3r'], ['stage2.config', fixture('slic3r.ini'), 'slic3r.ini'],
    ['group', 'mk3'], ['copies', '2'],
  ])
  assert.equal(r.status, 201, JSON.stringify(r.body))
  assert.deepEqual(r.body.queue, { group: 'mk3', copies: 2 })
  const p = await ended(r.body.id)
  assert.equal(p.status, 'complete', p.error)
  assert.match(p.queue.job, /^j\d+-\d{6}$/)
  const job = await getJson(`${node.url}/api/v1/queue/${p.queue.job}`)
  assert.equal(job.name, 'main.gcode')
  assert.equal(job.group, 'mk3')
  assert.equal(job.copies.length, 2)
  // the first copy prints on the simulated printer: the G-code the slicing stage made
  await until(async () => (await getJson(`${node.url}/api/v1/queue/${p.queue.job}`)).copies[0].status === 'complete', 60_000, 'the first copy to print')
  const out = Buffer.from(await (await fetch(`${node.url}/api/v1/pipelines/${p.id}/stages/2/output`)).arrayBuffer())
  assert.equal(sha(out), p.stages[1].outSha256)
  const gcode = join(node.dataDir, 'sliced.gcode')
  writeFileSync(gcode, out)
  assert.deepEqual(printedCommands(sim.log()), expectedCommands(gcode))
})

test('bad forms: 400 naming the field, nothing created, no file left behind', { timeout: 60_000 }, async () => {
  const scad = fixture('cube.scad')
  const ini = fixture('slic3r.ini')
  const before = (await getJson(`${node.url}/api/v1/pipelines`)).length
  const cases: Array<[Part[], string, RegExp]> = [
    [[['stage1', 'openscad'], ['stage1.model', scad, 'cube.scad']], 'stage1.model', /not a file field/],
    [[['stage1', 'openscad'], ['stage1.in', scad, 'cube.scad'], ['colour', 'red']], 'colour', /unknown field/],
    [[['stage1', 'openscad']], 'stage1.in', /needs its input/],
    [[['stage1', 'openscad'], ['stage1.in', scad, 'cube.scad'], ['stage3', 'slic3r']], 'stage2', /missing/],
    [[['stage1', 'openscad'], ['stage1.in', scad, 'cube.scad'], ['stage2.config', ini, 'slic3r.ini']], 'stage2', /the service of this stage/],
    [[['stage1', 'openscad'], ['stage1.in', scad, 'cube.scad'], ['stage2', 'slicer']], 'stage2', /unknown service slicer/],
    [[['stage1', 'openscad'], ['stage1.in', scad, 'cube.scad'], ['stage2', 'slic3r'], ['stage2.config', ini, 'slic3r.ini'], ['group', 'mk3'], ['copies', '0']], 'copies', /whole number/],
    [[['stage1', 'openscad'], ['stage1.in', scad, 'cube.scad'], ['group', 'mk3']], 'group', /not G-code/],
    [[['stage1', 'openscad'], ['stage1.in', scad, 'cube.scad'], ['stage1.config', ini, 'x.ini']], 'stage1.config', /takes no config/],
    [[['stage1', 'openscad'], ['stage1.in', scad, 'cube.scad'], ['stage2', 'slic3r'], ['stage2.prearg', '--run=']], 'stage2.prearg', /takes --load=/],
    [[['stage1', 'openscad'], ['stage1.in', scad, 'cube.scad'], ['stage2', 'slic3r'], ['copies', '3']], 'copies', /goes with group or printer/],
  ]
  for (const [parts, field, why] of cases) {
    const r = await post(parts)
    assert.equal(r.status, 400, `${field}: ${JSON.stringify(r.body)}`)
    assert.equal(r.body.field, field, JSON.stringify(r.body))
    assert.match(r.body.error, new RegExp(`^${field.replace('.', '\\.')}: `))
    assert.match(r.body.error, why)
  }
  // a group no printer of the LAN is in: refused at once, not queued forever
  const nobody = await post([['stage1', 'openscad'], ['stage1.in', scad, 'cube.scad'], ['stage2', 'slic3r'], ['stage2.config', ini, 'slic3r.ini'], ['group', 'nosuch']])
  assert.equal(nobody.status, 400)
  assert.match(nobody.body.error, /no printer of group nosuch/)
  assert.equal((await getJson(`${node.url}/api/v1/pipelines`)).length, before, 'no pipeline was created')
  assert.deepEqual(tmpFiles(), [], 'no upload is left in tasks/tmp')
})

test('a form over --max-upload, or over what the content store holds, is refused with 413', { timeout: 60_000 }, async () => {
  const small = await testNode({ maxUpload: 64 << 10 })
  try {
    const form = new FormData()
    form.append('stage1', 'openscad')
    form.append('stage1.in', new Blob([Buffer.alloc(100 << 10, 'x')]), 'big.scad')
    const r = await fetch(`${small.url}/api/v1/pipelines`, { method: 'POST', body: form, headers: { accept: 'application/json' } })
    assert.equal(r.status, 413)
    assert.match(((await r.json()) as any).error, /--max-upload/)
    // the part written so far is removed as the upload is refused (the reply may come first)
    await until(() => readdirSync(join(small.dataDir, 'tasks', 'tmp')).length === 0, 5000, 'the partial upload to be removed')
    assert.deepEqual(await getJson(`${small.url}/api/v1/pipelines`), [])
  } finally {
    await small.stop()
  }
  // files that the content store cannot hold all at once: refused, not lost from it later
  const tiny = await testNode({ cacheSize: 32 << 10 })
  try {
    const form = new FormData()
    form.append('stage1', 'openscad')
    form.append('stage1.in', new Blob([Buffer.alloc(40 << 10, 'x')]), 'big.scad')
    const r = await fetch(`${tiny.url}/api/v1/pipelines`, { method: 'POST', body: form, headers: { accept: 'application/json' } })
    assert.equal(r.status, 413)
    const body = (await r.json()) as any
    assert.equal(body.field, 'stage1.in')
    assert.match(body.error, /--cache-size/)
    assert.deepEqual(readdirSync(join(tiny.dataDir, 'tasks', 'tmp')), [])
  } finally {
    await tiny.stop()
  }
})

interface Sse { id?: string, event: string, data: any }
/** An events stream read as it comes, as a script reading with curl -N would. */
async function sse (url: string, headers: Record<string, string> = {}): Promise<{ events: Sse[], close (): void }> {
  const ctl = new AbortController()
  const r = await fetch(url, { headers, signal: ctl.signal })
  assert.equal(r.status, 200)
  const events: Sse[] = []
  const reader = r.body!.pipeThrough(new TextDecoderStream()).getReader()
  let buf = ''
  void (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read()
        if (done) return
        buf += value
        let cut
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const e: Partial<Sse> = {}
          for (const line of buf.slice(0, cut).split('\n')) {
            if (line.startsWith('id: ')) e.id = line.slice(4)
            else if (line.startsWith('event: ')) e.event = line.slice(7)
            else if (line.startsWith('data: ')) e.data = JSON.parse(line.slice(6))
          }
          buf = buf.slice(cut + 2)
          if (e.event) events.push(e as Sse)
        }
      }
    } catch {}
  })()
  return { events, close: () => ctl.abort() }
}

test('pipeline events: every change of a pipeline on the events stream; Last-Event-ID resumes with exactly what was missed', { timeout: 150_000 }, async () => {
  const url = `${node.url}/api/v1/events?events=pipeline`
  const a = await sse(url)
  let id: string
  try {
    // cache=false: the same model sliced by an earlier test would otherwise complete from the cache at once
    const r = await post([['stage1', 'openscad'], ['stage1.in', fixture('cube.scad'), 'cube.scad'], ['stage2', 'slic3r'], ['stage2.config', fixture('slic3r.ini'), 'slic3r.ini'], ['cache', 'false']])
    assert.equal(r.status, 201, JSON.stringify(r.body))
    assert.equal(r.body.cache, false)
    id = r.body.id
    await until(() => a.events.some((e) => e.data.id === id && e.data.status === 'complete'), 120_000, 'the pipeline to complete on the stream')
    const mine = a.events.filter((e) => e.data.id === id)
    assert.ok(a.events.every((e) => e.event === 'pipeline'), 'only the events asked for')
    assert.deepEqual(mine[0].data.stages.map((s: any) => s.state), ['waiting', 'waiting'], 'first as it was created')
    const seen = (n: number) => [...new Set(mine.map((e) => e.data.stages[n].state))]
    assert.ok(seen(0).includes('busy') || seen(0).includes('queued'), `stage 1 was seen running: ${seen(0).join(' ')}`)
    assert.deepEqual(seen(1).slice(-1), ['complete'])
    assert.deepEqual(mine.at(-1)!.data, await getJson(`${node.url}/api/v1/pipelines/${id}`), 'the last event is the pipeline as GET shows it')

    const b = await sse(url, { 'last-event-id': mine[0].id! })
    try {
      const after = a.events.slice(a.events.indexOf(mine[0]) + 1)
      await until(() => b.events.length >= after.length, 5000, 'the events missed')
      assert.deepEqual(b.events.slice(0, after.length).map((e) => e.id), after.map((e) => e.id), 'what the first stream had after that id, again')
    } finally { b.close() }
  } finally { a.close() }
})
