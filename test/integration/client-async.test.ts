import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fixtures, root, testNode, until, waitTask, type TestNode } from '../helpers/node.js'
import { ensureBuilt, fields, run, start, workdir, type Workdir } from '../fixtures/client/harness.js'

let node: TestNode
let s: string
let w: Workdir
let hook: Server
const pings: string[] = []

before(async () => {
  ensureBuilt()
  node = await testNode()
  s = `--s=127.0.0.1:${node.port}`
  w = workdir('cube.scad', 'slic3r.ini')
  hook = createServer((req, res) => { pings.push(req.url!); res.end('ok') }).listen(0, '127.0.0.1')
  await once(hook, 'listening')
})
after(async () => {
  hook.close()
  await node.stop()
  w.remove()
})

const rrcloud = (...args: string[]) => run(w, 'run.js', args)
const idOf = (stdout: string) => {
  const m = /^id: (\d+-\d{6})\n$/.exec(stdout)
  assert.ok(m, `expected "id: ID", got ${JSON.stringify(stdout)}`)
  return m[1]
}

test('rrcloud --s=HOST openscad test.scad prints the id at once; info, log and fetch follow it', async () => {
  const r = await rrcloud(s, 'openscad', 'cube.scad')
  assert.equal(r.code, 0, r.stderr)
  const id = idOf(r.stdout)
  await waitTask(node.url, id)
  const info = await rrcloud(s, 'info', id)
  assert.equal(info.code, 0, info.stderr)
  const t = fields(info.stdout)
  assert.equal(t.id, id)
  assert.equal(t.status, 'complete')
  assert.equal(t.out, `tasks/out/${id}.stl`)
  assert.match((await rrcloud('info', id, s)).stdout, /status: complete/, 'the option may come after the command')
  const log = await rrcloud(s, 'log', id)
  assert.match(log.stdout, /Top level object is a 3D object/)
  const f = await rrcloud(s, 'fetch', id, '-o', 'fetched.stl')
  assert.equal(f.code, 0, f.stderr)
  assert.equal((readFileSync(join(w.cwd, 'fetched.stl'), 'utf8').match(/facet normal/g) ?? []).length, 12)
  assert.equal((await rrcloud(s, 'fetch', id)).code, 0)
  assert.match(readFileSync(join(w.cwd, `${id}.stl`), 'utf8'), /^solid /, "default: the node's file name, here")
  const json = JSON.parse((await rrcloud(s, 'info', id, '--json')).stdout)
  assert.equal(json.id, id)
  assert.equal(json.status, 'complete')
})

test("'--notifier=URL/ping-$id' is passed through: the node calls it with the id", async () => {
  const url = `http://127.0.0.1:${(hook.address() as { port: number }).port}/ping-$id`
  const r = await rrcloud(`--notifier=${url}`, s, 'slic3r', '--load=slic3r.ini', 'cube.scad')
  assert.equal(r.code, 0, r.stderr)
  const id = idOf(r.stdout)
  assert.equal(node.runner.get(id).notifier, url)
  await waitTask(node.url, id)
  await until(() => pings.includes(`/ping-${id}`), 10000, 'the notifier call')
})

test('--wait makes it synchronous; --json prints the task instead of its id', async () => {
  const r = await rrcloud(s, '--wait', 'openscad', 'cube.scad', '-owaited.stl')
  assert.equal(r.code, 0, r.stderr)
  assert.match(readFileSync(join(w.cwd, 'waited.stl'), 'utf8'), /^solid /)
  const j = await rrcloud(s, '--json', 'openscad', 'cube.scad')
  const task = JSON.parse(j.stdout)
  assert.equal(task.service, 'openscad')
  assert.match(task.id, /^\d+-\d{6}$/)
})

test('info lists every task; meta and services describe the node; all with --json', async () => {
  const list = await rrcloud(s, 'info')
  assert.match(list.stdout, /^ID\s+SERVICE\s+STATUS/)
  const all = JSON.parse((await rrcloud(s, 'info', '--json')).stdout)
  assert.deepEqual(all.map((t: { id: string }) => t.id).sort(), node.runner.list().map((t) => t.id).sort())
  const meta = fields((await rrcloud(s, 'meta')).stdout)
  assert.equal(meta.node, node.url)
  assert.equal(meta.slots, '2')
  assert.match(meta.services, /echo,openjscad,openscad,povray,slic3r/)
  assert.equal(JSON.parse((await rrcloud(s, 'meta', '--json')).stdout).slots, 2)
  const svc = await rrcloud(s, 'services')
  assert.match(svc.stdout, /^slic3r\s+yes\s+\S*slic3r/m)
  const svcJson = JSON.parse((await rrcloud(s, 'services', '--json')).stdout)
  assert.deepEqual(svcJson.find((x: { name: string }) => x.name === 'slic3r').argInput, ['--load='])
})

test('a service only the node knows (its own descriptor) is run by its shape from the node', async () => {
  writeFileSync(join(w.cwd, 'one.txt'), '0\n')
  const r = await run(w, 'run.js', [s, '--wait', 'slow', 'one.txt', '-oslow.out'])
  assert.equal(r.code, 0, r.stderr)
  assert.equal(readFileSync(join(w.cwd, 'slow.out'), 'utf8'), '0\n')
})

test('pause, resume and cancel a running task', async () => {
  writeFileSync(join(w.cwd, 'long.txt'), '30\n')
  const id = idOf((await rrcloud(s, 'slow', 'long.txt')).stdout)
  await until(() => node.runner.get(id).status === 'busy', 10000, 'busy')
  const p = await rrcloud(s, 'pause', id)
  assert.equal(p.code, 0, p.stderr)
  assert.equal(fields(p.stdout).status, 'paused')
  assert.equal(fields((await rrcloud(s, 'resume', id)).stdout).status, 'busy')
  const again = await rrcloud(s, 'resume', id)
  assert.equal(again.code, 1)
  assert.match(again.stderr, /only a paused task can be resumed/)
  const c = await rrcloud(s, 'cancel', id, '--json')
  assert.equal(c.code, 0, c.stderr)
  assert.equal(JSON.parse(c.stdout).status, 'cancelled')
  const f = await rrcloud(s, 'fetch', id)
  assert.equal(f.code, 1)
  assert.match(f.stderr, new RegExp(`task ${id} is cancelled`))
})

test('Ctrl-C while waiting cancels the task on the node, exit 130', async () => {
  writeFileSync(join(w.cwd, 'int.txt'), '30\n')
  const before = new Set(node.runner.list().map((t) => t.id))
  const { child, done } = start(w, 'run.js', [s, '--wait', 'slow', 'int.txt'])
  const t = await until(() => node.runner.list().find((x) => !before.has(x.id) && x.status === 'busy'), 10000, 'the task to run')
  child.kill('SIGINT')
  const r = await done
  assert.equal(r.code, 130, r.stderr)
  assert.match(r.stderr, new RegExp(`cancelling task ${t.id}`))
  assert.equal(node.runner.get(t.id).status, 'cancelled')
})

test('doctor names the tool of every service here', async () => {
  const r = await rrcloud('doctor', '--json')
  assert.equal(r.code, 0, r.stderr)
  const rows: Array<{ service: string; available: boolean; reason?: string }> = JSON.parse(r.stdout)
  const tools = rows.filter((x) => x.service !== 'printrun')
  assert.deepEqual(tools.map((x) => [x.service, x.available]),
    [['echo', true], ['openjscad', true], ['openscad', true], ['povray', true], ['slic3r', true]])
  const printer = rows.find((x) => x.service === 'printrun')
  if (printer) assert.match(printer.reason!, /printer/, 'printing needs a printer on a node, not a tool')
  const text = await rrcloud('doctor')
  assert.match(text.stdout, /^openscad\s+\/usr\/bin\/openscad/m)
  assert.match(text.stdout, /^sandbox: (bwrap|none)/m)
  assert.match(text.stdout, /^mdns: (can work on \S+ \(|cannot work here)/m)
})

test('doctor says when mDNS cannot work here (a host with loopback alone)', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root for a network namespace')
  const ns = `rrdoc-${process.pid}`
  const ip = (...args: string[]) => promisify(execFile)('ip', args)
  await ip('netns', 'add', ns)
  try {
    await ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up')
    const { stdout } = await promisify(execFile)('ip', ['netns', 'exec', ns, process.execPath, join(root, 'bin', 'run.js'), 'doctor'], { env: { ...process.env, RRCLOUD_MDNS: 'off' } })
    assert.match(stdout, /^mdns: cannot work here: no network interface can carry multicast; nodes here cannot be found by other machines/m)
  } finally { await ip('netns', 'del', ns) }
})

test('doctor says what to install for a tool that is missing', async () => {
  const r = await rrcloud('doctor', '--services', join(fixtures, 'client', 'services'))
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /^nosuch\s+missing: rrcloud-no-such-tool or rrcloud-no-such-tool-either not found\s+apt-get install rrcloud-nosuch or npm install -g rrcloud-nosuch$/m)
  assert.match(r.stdout, /\d service\(s\) cannot run here/)
  const row = JSON.parse((await rrcloud('doctor', '--json', '--services', join(fixtures, 'client', 'services'))).stdout).find((x: { service: string }) => x.service === 'nosuch')
  assert.deepEqual(row.install, ['apt-get install rrcloud-nosuch', 'npm install -g rrcloud-nosuch'])
  const bad = await rrcloud('doctor', '--services', join(w.cwd, 'nowhere'))
  assert.equal(bad.code, 2)
  assert.match(bad.stderr, /--services \S+nowhere: no such folder/)
})
