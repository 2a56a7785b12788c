// Pipelines across nodes on loopback (named with --peer, no mDNS): outputs pulled node to node
// (POST /api/v1/blobs/fetch), a driving node killed and restarted resumes its pipeline, and a
// stage whose node dies runs once more on another.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { getJson, testNode, until, type TestNode } from '../helpers/node.js'
import { startCli } from '../helpers/cli-node.js'
import { ensureBuilt, run, workdir } from '../fixtures/client/harness.js'

const w = workdir('slic3r.ini', 'slow-render.scad', 'ball.scad', 'cube.scad')
const dirs: string[] = []
const procs: ChildProcess[] = []
after(() => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
  w.remove()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})
const scratch = () => { const d = mkdtempSync(join(tmpdir(), 'rrcloud-pipe-')); dirs.push(d); return d }
const rrcloud = (args: string[]) => run(w, 'rrcloud', args, { RRCLOUD_LOCAL: 'off' }, 120_000)
const idOf = (stdout: string) => /^id: (p\S+)$/m.exec(stdout)?.[1] ?? assert.fail(`no pipeline id in ${stdout}`)
const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex')
const postJson = async (url: string, body: unknown, headers: Record<string, string> = {}) => {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json', ...headers }, body: JSON.stringify(body) })
  return { status: r.status, body: await r.json() as any }
}
const cli = async (dataDir: string, extra: string[]) => {
  const n = await startCli(dataDir, extra)
  procs.push(n.proc)
  return n
}
const killed = async (p: ChildProcess) => { p.kill('SIGKILL'); if (p.exitCode === null && p.signalCode === null) await once(p, 'exit') }

test('POST /api/v1/blobs/fetch: a node pulls a blob from another by digest, checked; refused sources, other bytes and missing blobs', async () => {
  const [src, dst, narrow, locked] = await Promise.all([testNode(), testNode(), testNode({ allow: ['127.0.0.1/32'] }), testNode({ token: 't0k' })])
  const evil = createServer((_req, res) => res.end('other bytes')).listen(0, '127.0.0.1')
  await once(evil, 'listening')
  try {
    const body = 'a blob that travels\n'
    const h = sha(body)
    assert.equal((await fetch(`${src.url}/api/v1/blobs/${h}`, { method: 'PUT', body })).status, 201)
    const first = await postJson(`${dst.url}/api/v1/blobs/fetch`, { sha256: h, from: src.url })
    assert.deepEqual([first.status, first.body], [201, { sha256: h, size: body.length, pulled: true }])
    assert.equal(await (await fetch(`${dst.url}/api/v1/blobs/${h}`)).text(), body)
    assert.equal((await postJson(`${dst.url}/api/v1/blobs/fetch`, { sha256: h, from: `${src.url}/` })).status, 200, 'held already')

    const other = sha('nowhere')
    const refusals: Array<[unknown, number, RegExp]> = [
      [{ sha256: other, from: `${src.url}/api/v1/blobs` }, 400, /not a node's base URL/],
      [{ sha256: other, from: 'ftp://127.0.0.1/' }, 400, /not a node's base URL/],
      [{ sha256: other, from: 'http://169.254.169.254' }, 400, /from refused: 169\.254\.169\.254 is a link-local or cloud metadata address/],
      [{ sha256: other, from: src.url }, 502, /answered 404 .* does not hold it/],
      [{ sha256: 'abc', from: src.url }, 400, /SHA-256/],
      [{ sha256: other, from: src.url, extra: 1 }, 400, /extra/],
    ]
    for (const [req, status, re] of refusals) {
      const r = await postJson(`${dst.url}/api/v1/blobs/fetch`, req)
      assert.equal(r.status, status, JSON.stringify(req))
      assert.match(r.body.error, re)
    }
    const bad = await postJson(`${dst.url}/api/v1/blobs/fetch`, { sha256: other, from: `http://127.0.0.1:${(evil.address() as any).port}` })
    assert.equal(bad.status, 502)
    assert.match(bad.body.error, /SHA-256 is [0-9a-f]{64}, not [0-9a-f]{64}: nothing was kept/)
    assert.equal((await fetch(`${dst.url}/api/v1/blobs/${other}`)).status, 404)
    // a node with --allow 127.0.0.1/32 pulls from nowhere else, loopback or not
    const out = await postJson(`${narrow.url}/api/v1/blobs/fetch`, { sha256: h, from: `http://127.0.0.2:${src.port}` })
    assert.equal(out.status, 400)
    assert.match(out.body.error, /127\.0\.0\.2 is outside the node's --allow/)
    // a node with a token wants it, and passes it on
    assert.equal((await postJson(`${locked.url}/api/v1/blobs/fetch`, { sha256: h, from: src.url })).status, 401)
    assert.equal((await postJson(`${locked.url}/api/v1/blobs/fetch`, { sha256: h, from: src.url }, { authorization: 'Bearer t0k' })).status, 201)
  } finally {
    evil.close()
    await Promise.all([src, dst, narrow, locked].map((n) => n.stop()))
  }
})

test('a driving node killed (SIGKILL) mid-chain resumes at restart: it re-attaches to the running stage, then the next stage pulls its output', async () => {
  ensureBuilt()
  const worker = await testNode({ offer: ['openscad'] })
  const dataDir = scratch()
  const args = ['--offer', 'slic3r,echo', '--peer', `127.0.0.1:${worker.port}`]
  try {
    const d1 = await cli(dataDir, args)
    const r = await rrcloud(['pipe', '--async', '--no-cache', `--s=${d1.url}`, 'openscad', 'slow-render.scad', '--', 'slic3r', '--load=slic3r.ini'])
    assert.equal(r.code, 0, r.stderr)
    const id = idOf(r.stdout)
    const task = await until(async () => {
      const p = await getJson(`${d1.url}/api/v1/pipelines/${id}`)
      const t = p.stages[0].task
      return t && worker.runner.get(t).status === 'busy' ? t : undefined
    }, 30_000, 'the render to run on the worker')
    await killed(d1.proc)
    const d2 = await cli(dataDir, args)
    const p = await until(async () => {
      const x = await getJson(`${d2.url}/api/v1/pipelines/${id}`)
      return x.status !== 'running' ? x : undefined
    }, 60_000, 'the pipeline to end')
    assert.equal(p.status, 'complete', p.error)
    assert.equal(p.stages[0].task, task, 'the same task: re-attached, not run again')
    assert.deepEqual(worker.runner.list().map((t) => t.service), ['openscad'])
    const meta = await getJson(`${d2.url}/api/v1/meta`)
    assert.equal(p.stages[0].nodeId, worker.nodeId)
    assert.equal(p.stages[1].nodeId, meta.id, 'slicing on the driving node, which pulled the STL from the worker')
    assert.ok(d2.out.some((l) => l.includes(`pipeline ${id}: resuming at stage 1/2`)), d2.out.join('\n'))
    assert.ok(d2.out.some((l) => /blob [0-9a-f]{12} \(\d+ bytes\) pulled from 127\.0\.0\.1:\d+/.test(l)), d2.out.join('\n'))
    const gcode = await (await fetch(`${d2.url}/api/v1/pipelines/${id}/stages/2/output`)).text()
    assert.match(gcode, /^G1 /m)
    await killed(d2.proc)
  } finally {
    await worker.stop()
  }
})

test('a stage whose node dies mid-stage runs once more on another node', async () => {
  ensureBuilt()
  const [a, b] = await Promise.all([cli(scratch(), ['--offer', 'slic3r']), cli(scratch(), ['--offer', 'slic3r'])])
  const driver = await testNode({ offer: ['openscad', 'echo'], peers: [a.url, b.url] })
  try {
    const r = await rrcloud(['pipe', '--async', '--no-cache', `--s=${driver.url}`, 'openscad', 'ball.scad', '--', 'slic3r', '--load=slic3r.ini'])
    const id = idOf(r.stdout)
    const first = await until(async () => {
      const p = await getJson(`${driver.url}/api/v1/pipelines/${id}`)
      const s = p.stages[1]
      if (!s.task) return undefined
      const node = [a, b].find((n) => n.url.endsWith(`:${new URL(s.nodeUrl).port}`))!
      const t = await getJson(`${node.url}/api/v1/tasks/${s.task}`)
      return t.status === 'busy' ? node : undefined
    }, 60_000, 'slicing to run')
    await killed(first.proc)
    const p = await until(async () => {
      const x = await getJson(`${driver.url}/api/v1/pipelines/${id}`)
      return x.status !== 'running' ? x : undefined
    }, 90_000, 'the pipeline to end')
    assert.equal(p.status, 'complete', p.error)
    const other = first === a ? b : a
    assert.equal(p.stages[1].attempts, 2)
    assert.equal(new URL(p.stages[1].nodeUrl).port, new URL(other.url).port)
    assert.match(driver.lines.join('\n'), /stage 2\/2 \(slic3r\): .* stopped answering .*; running it again elsewhere/)
  } finally {
    await driver.stop()
    await Promise.all([a, b].map((n) => killed(n.proc)))
  }
})
