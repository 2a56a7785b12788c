// The first ten minutes of a new user: the README's lines work as written in a checkout,
// options go anywhere, SERVICE.cloud --help, slicer.cloud, where the client looked when it found no
// node and the tool run here instead, and the small things a newcomer met on the node.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { copyFileSync, readFileSync, readlinkSync, readdirSync, writeFileSync } from 'node:fs'
import { createServer, request } from 'node:http'
import { BlockList } from 'node:net'
import { once } from 'node:events'
import { join } from 'node:path'
import { fixtures, getJson, root, testNode, waitTask, type TestNode } from '../helpers/node.js'
import { deadPort, ensureBuilt, run, start, workdir, type Workdir } from '../fixtures/client/harness.js'
import { createApp } from '../../src/node/app.js'

let node: TestNode
let w: Workdir
let dead: number
const at = () => `127.0.0.1:${node.port}`
const ids = () => node.runner.list().map((t) => t.id)

before(async () => {
  ensureBuilt()
  node = await testNode({ name: 'newcomer' })
  w = workdir('cube.scad')
  writeFileSync(join(w.cwd, 'a.txt'), 'hello\n')
  dead = await deadPort()
})
after(async () => {
  await node.stop()
  w.remove()
})

/** Runs a shell line as the README gives it, in the work folder, with bin/ of the checkout as the README sets it up. */
function shell (line: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn('bash', ['-c', line], { cwd: w.cwd, env: { ...w.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    c.stdout.on('data', (d) => { stdout += d })
    c.stderr.on('data', (d) => { stderr += d })
    c.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

test('the README LAN section: its PATH line puts bin/ (tracked in git) first; every command it names is there and runs', async () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## Using the nodes of the LAN'))
  const block = /```sh\n([\s\S]*?)```/.exec(section)![1]
  const lines = block.split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()).filter(Boolean)
  assert.equal(lines[0], 'export PATH="$PWD/bin:$PATH"', 'the section sets the PATH up itself')
  // what a fresh clone has: the links as git tracks them, and what npm install -g puts on the PATH
  const tracked = execFileSync('git', ['ls-files', '-s', 'bin'], { cwd: root, encoding: 'utf8' })
  const bins = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).bin
  for (const line of lines.slice(1)) {
    for (const cmd of line.split(';').map((c) => c.trim().split(/\s+/)[0])) {
      assert.match(tracked, new RegExp(`^120000 \\S+ 0\\tbin/${cmd.replace('.', '\\.')}$`, 'm'), `${cmd} is a link in git`)
      assert.equal(readlinkSync(join(root, 'bin', cmd)), 'run.js')
      assert.equal(bins[cmd], './bin/run.js', `${cmd} in package.json bin`)
    }
  }
  for (const f of readdirSync(join(root, 'bin')).filter((f) => f !== 'package.json' && f !== 'run.js')) assert.equal(bins[f], './bin/run.js', `package.json bin has ${f}`)
  // the lines themselves, in a checkout with bin/ on the PATH, against the node on "this machine"
  const env = { RRCLOUD_LOCAL: at(), PATH: `${join(root, 'bin')}:${process.env.PATH}` }
  const peers = await shell('rrcloud peers', env)
  assert.equal(peers.code, 0, peers.stderr)
  assert.match(peers.stdout, /^newcomer \(here\)\s/m)
  const sync = await shell('openscad.cloud cube.scad -ocube.stl', env)
  assert.equal(sync.code, 0, sync.stderr)
  assert.ok(readFileSync(join(w.cwd, 'cube.stl'), 'utf8').startsWith('solid '))
  const async = await shell('rrcloud openscad cube.scad', env)
  assert.equal(async.code, 0, async.stderr)
  const id = /^id: (\S+)$/m.exec(async.stdout)![1]
  await waitTask(node.url, id)
  const both = await shell(`rrcloud info ${id}; rrcloud fetch ${id} -o fetched.stl`, env)
  assert.equal(both.code, 0, both.stderr)
  assert.match(both.stdout, /^status: complete$/m)
  assert.ok(readFileSync(join(w.cwd, 'fetched.stl'), 'utf8').startsWith('solid '))
})

test('options before or among the arguments of `run` and of every command', async () => {
  const before = ids().length
  const waited = await run(w, 'rrcloud', ['run', '--wait', `--s=${at()}`, 'echo', 'a.txt'])
  assert.equal(waited.code, 0, waited.stderr)
  assert.equal(waited.stdout, 'hello\n')
  const named = await run(w, 'rrcloud', ['run', `--s=${at()}`, 'echo', 'a.txt'], { RRCLOUD_LOCAL: `127.0.0.1:${dead}` })
  assert.equal(named.code, 0, named.stderr)
  const id = /^id: (\S+)$/m.exec(named.stdout)![1]
  assert.ok(ids().includes(id), '--s after run is the node used')
  const json = await run(w, 'rrcloud', ['--json', 'run', 'echo', '--s', at(), 'a.txt'])
  assert.equal(JSON.parse(json.stdout).service, 'echo')
  assert.equal(ids().length, before + 3)
  await waitTask(node.url, id)
  for (const args of [['--interface', 'lo', `--s=${at()}`, 'info', id], ['info', id, `--s=${at()}`, '--interface=lo'], ['info', `--s=${at()}`, id]]) {
    const r = await run(w, 'rrcloud', args, { RRCLOUD_LOCAL: 'off' })
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stdout, new RegExp(`^id: ${id}$`, 'm'))
  }
})

test('SERVICE.cloud --help: the service\'s inputs, prearguments, output forms and the options, exit 0', async () => {
  const scad = await run(w, 'openscad.cloud', ['--help'])
  assert.equal(scad.code, 0, scad.stderr)
  assert.match(scad.stdout, /^Usage: openscad\.cloud \[OPTIONS\] FILE\.scad \[-oOUT\.stl\]$/m)
  assert.match(scad.stdout, /^Inputs: 1 file\(s\) \(\.scad\)/m)
  assert.match(scad.stdout, /^Output: -oFILE, -o FILE, --output=FILE or --output FILE; without one, next to the input with \.stl$/m)
  assert.match(scad.stdout, /--s=HOST\[:PORT\]/)
  assert.match(scad.stdout, /--no-local-fallback/)
  const slic3r = await run(w, 'slic3r.cloud', ['-h'])
  assert.equal(slic3r.code, 0)
  assert.match(slic3r.stdout, /^Prearguments: --load=FILE \(or --load FILE\)/m)
  const print = await run(w, 'printrun.cloud', ['--help'])
  assert.equal(print.code, 0)
  assert.match(print.stdout, /PORT FILE\.gcode/)
  const before = ids().length
  const async = await run(w, 'rrcloud', ['openscad', '--help'])
  assert.equal(async.code, 0)
  assert.match(async.stdout, /^Usage: rrcloud openscad /m)
  assert.equal(ids().length, before, 'nothing sent')
})

test('slicer.cloud is slic3r.cloud, as in the seed\'s examples', async () => {
  const help = await run(w, 'slicer.cloud', ['--help'])
  assert.equal(help.code, 0)
  assert.match(help.stdout, /^slicer\.cloud: Slic3r/m)
  copyFileSync(join(fixtures, 'cube.scad'), join(w.cwd, 'cube.stl'))
  const before = new Set(ids())
  await run(w, 'slicer.cloud', [`--s=${at()}`, 'cube.stl', '--output=cube.gcode'])
  const sent = node.runner.list().filter((t) => !before.has(t.id))
  assert.deepEqual(sent.map((t) => t.service), ['slic3r'])
})

test('no node found: where the client looked; the tool runs here with a note, unless --no-local-fallback', async () => {
  const env = { RRCLOUD_LOCAL: `127.0.0.1:${dead}` }
  const here = await run(w, 'echo.cloud', ['a.txt'], env)
  assert.equal(here.code, 0, here.stderr)
  assert.equal(here.stdout, 'hello\n', 'echo ran on this machine')
  const note = here.stderr.trim().split('\n')
  assert.equal(note.length, 1, 'one line')
  assert.match(note[0], new RegExp(`^rrcloud: no node found \\(looked at: 127\\.0\\.0\\.1:${dead} \\(no node there\\), not mDNS \\(RRCLOUD_MDNS is off\\), no --s, no rrcloudrc \\(${w.cwd}/rrcloudrc, ${w.home}/\\.rrcloudrc, /etc/rrcloudrc\\)\\); running echo on this machine \\(--no-local-fallback to refuse\\)$`))
  const refused = await run(w, 'echo.cloud', ['--no-local-fallback', 'a.txt'], env)
  assert.equal(refused.code, 3)
  assert.equal(refused.stdout, '')
  assert.match(refused.stderr, new RegExp(`no rrcloud node found; looked at: 127\\.0\\.0\\.1:${dead} \\(no node there\\), not mDNS`))
  // asynchronous: there is no id to give without a node
  const async = await run(w, 'rrcloud', ['echo', 'a.txt'], env)
  assert.equal(async.code, 3)
  assert.match(async.stderr, /no rrcloud node found; looked at: .*--local/)
  // a node that was named and does not answer is an error, never a reason to run here
  const named = await run(w, 'echo.cloud', [`--s=127.0.0.1:${dead}`, 'a.txt'], env)
  assert.equal(named.code, 3)
  assert.equal(named.stdout, '')
})

test('a 413 names the files as the user gave them', async () => {
  const small = await testNode({ maxUpload: 1 << 20 })
  try {
    writeFileSync(join(w.cwd, 'big.txt'), Buffer.alloc(3 << 20, 65))
    const r = await run(w, 'echo.cloud', [`--s=127.0.0.1:${small.port}`, 'a.txt', 'big.txt'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /over this node's limit of 1 MiB .*\(inputs: a\.txt, 6 bytes; big\.txt, 3\.0 MiB\)/)
    assert.doesNotMatch(r.stderr, /fileIn/)
    // streamed without a length, the node itself names the file that went over
    const boundary = 'rrcloudtest'
    const req = request(`${small.url}/api/v1/tasks`, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'transfer-encoding': 'chunked' } })
    req.on('error', () => {})
    req.write(`--${boundary}\r\nContent-Disposition: form-data; name="service"\r\n\r\necho\r\n--${boundary}\r\nContent-Disposition: form-data; name="fileIn0"; filename="huge.stl"\r\n\r\n`)
    const [res] = await Promise.race([once(req, 'response'), (async () => {
      for (let i = 0; i < 40; i++) if (!req.write(Buffer.alloc(64 << 10, 65))) await once(req, 'drain')
      return new Promise<never>(() => {})
    })()]) as [import('node:http').IncomingMessage]
    let text = ''
    for await (const c of res) text += c
    req.destroy()
    assert.equal(res.statusCode, 413)
    assert.match(JSON.parse(text).error, /^with huge\.stl, the uploads are over this node's limit of 1 MiB/)
  } finally {
    await small.stop()
  }
})

test('node: printrun logged with its printers; the meta page does not link the node id to a log', async () => {
  const p = await testNode({ printers: [{ name: 'mk3', path: '/dev/rrcloud-no-such-tty' }] })
  try {
    assert.ok(p.lines.includes('service printrun: printers mk3'), p.lines.join('\n'))
    assert.ok(!p.lines.some((l) => /undefined/.test(l)), p.lines.join('\n'))
  } finally {
    await p.stop()
  }
  const browser = { 'user-agent': 'Mozilla/5.0', accept: 'text/html' }
  const meta = await (await fetch(`${node.url}/?service=meta`, { headers: browser })).text()
  const nodeId = (await getJson(`${node.url}/api/v1/meta`)).id
  assert.ok(meta.includes(`<td>${nodeId}</td>`), 'the node id is shown')
  assert.ok(!meta.includes(`/tasks/log/${nodeId}`), 'and not linked to a log that is not there')
  const tasks = await (await fetch(`${node.url}/?service=info`, { headers: browser })).text()
  const task = ids()[0]
  assert.ok(tasks.includes(`<a href="/tasks/log/${task}">${task}</a>`), 'a task id still leads to its log')
})

test('GET /api/v1/peers lists the other nodes, not this one', async () => {
  const self = (await getJson(`${node.url}/api/v1/meta`)).id
  const seen = [{ name: 'me', record: { id: self } }, { name: 'other', record: { id: 'other-id' } }]
  const allow = new BlockList()
  allow.addSubnet('127.0.0.0', 8)
  const app = createApp({ dataDir: node.dataDir, allow, maxUpload: 1 << 20 }, { runner: node.runner, services: [], meta: () => ({ id: self }), peers: () => seen })
  const srv = createServer(app.callback()).listen(0, '127.0.0.1')
  await once(srv, 'listening')
  try {
    const peers = await getJson(`http://127.0.0.1:${(srv.address() as { port: number }).port}/api/v1/peers`)
    assert.deepEqual(peers.map((p: { name: string }) => p.name), ['other'])
  } finally {
    srv.close()
  }
})

test('rrcloud peers --watch --json: one JSON line per change, and Ctrl-C ends it with 0', async () => {
  const { child, done } = start(w, 'rrcloud', ['peers', '--watch', '--json'], { RRCLOUD_LOCAL: at() })
  let out = ''
  child.stdout!.on('data', (d) => { out += d })
  for (let i = 0; i < 100 && !out.includes('\n'); i++) await new Promise((resolve) => setTimeout(resolve, 100))
  child.kill('SIGINT')
  const r = await done
  assert.equal(r.code, 0, r.stderr)
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l))
  assert.deepEqual(lines.map((l) => [l.event, l.name]), [['up', 'newcomer']])
})
