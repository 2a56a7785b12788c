import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { once } from 'node:events'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { getJson, post, testNode, until, waitTask, type TestNode } from '../helpers/node.js'

const slow = (seconds: number) => [['fileIn0', String(seconds), 'wait.txt']] as Array<[string, string, string]>
const alive = (pid: number) => { try { process.kill(pid, 0); return true } catch { return false } }

/**
 * The `sleep` that the slow tool started, as this machine sees it: the tool runs in a sandbox with
 * pids of its own, so the pid it prints is not ours; look for it among the task's descendants.
 */
async function childPid (node: TestNode, id: string): Promise<number> {
  const dataDir = node.dataDir
  await until(() => existsSync(join(dataDir, 'tasks/log', id)) && /child \d+/.test(readFileSync(join(dataDir, 'tasks/log', id), 'utf8')), 5000, 'the tool to start its child')
  const t = await until(async () => { const x = await getJson(`${node.url}/api/v1/tasks/${id}`); return x.pid ? x : undefined }, 5000, 'the pid')
  return until(() => descendants(t.pid).find((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith('sleep\0')), 5000, 'the sleep among the task\'s processes')
}

/** every process below pid, from /proc */
function descendants (pid: number): number[] {
  const parent = new Map<number, number>()
  for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8')
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {}
  }
  const out: number[] = []
  const walk = (p: number) => { for (const [c, pp] of parent) if (pp === p) { out.push(c); walk(c) } }
  walk(pid)
  return out
}

test('cancel kills the whole process tree and records the task as cancelled', async () => {
  const node = await testNode()
  try {
    const { body: t } = await post(node.url, { service: 'slow' }, slow(60))
    const child = await childPid(node, t.id)
    const busy = await getJson(`${node.url}/api/v1/tasks/${t.id}`)
    assert.equal(busy.status, 'busy')
    assert.ok(alive(busy.pid) && alive(child))
    const r = await fetch(`${node.url}/api/v1/tasks/${t.id}`, { method: 'DELETE' })
    assert.equal(r.status, 200)
    const done = await waitTask(node.url, t.id, 10000)
    assert.equal(done.status, 'cancelled')
    assert.equal(done.error, 'cancelled on request')
    assert.ok(!alive(busy.pid), 'the tool is gone')
    await until(() => !alive(child), 3000, 'the grandchild to die')
    const again = await fetch(`${node.url}/api/v1/tasks/${t.id}`, { method: 'DELETE' })
    assert.equal(again.status, 409)
  } finally { await node.stop() }
})

test('a task that runs past --timeout fails with the reason, and its tree is killed', async () => {
  const node = await testNode({ timeoutSec: 1 })
  try {
    const { body: t } = await post(node.url, { service: 'slow' }, slow(30))
    const child = await childPid(node, t.id)
    const started = Date.now()
    const done = await waitTask(node.url, t.id, 10000)
    assert.equal(done.status, 'failed')
    assert.equal(done.error, 'timed out after 1 s')
    assert.ok(Date.now() - started < 5000)
    await until(() => !alive(child), 3000, 'the grandchild to die')
  } finally { await node.stop() }
})

test('beyond --slots, tasks wait as queued and run in order', async () => {
  const node = await testNode({ slots: 1 })
  try {
    const ids: string[] = []
    for (let i = 0; i < 3; i++) ids.push((await post(node.url, { service: 'slow' }, slow(0.6))).body.id)
    await until(async () => (await getJson(`${node.url}/api/v1/tasks/${ids[0]}`)).status === 'busy', 5000, 'first busy')
    const states = await Promise.all(ids.map(async (id) => (await getJson(`${node.url}/api/v1/tasks/${id}`)).status))
    assert.deepEqual(states, ['busy', 'queued', 'queued'])
    const meta = await getJson(`${node.url}/api/v1/meta`)
    assert.equal(meta.slots, 1)
    assert.equal(meta.free, 0)
    assert.equal(meta.queue, 2)
    const done = await Promise.all(ids.map((id) => waitTask(node.url, id)))
    assert.deepEqual(done.map((t) => t.status), ['complete', 'complete', 'complete'])
    assert.ok(done[0].etime <= done[1].etime && done[1].etime <= done[2].etime)
    // a queued task can be cancelled before it ever runs
    const a = (await post(node.url, { service: 'slow' }, slow(1))).body.id
    const b = (await post(node.url, { service: 'slow' }, slow(1))).body.id
    const c = await (await fetch(`${node.url}/api/v1/tasks/${b}/cancel`, { method: 'POST' })).json() as { status: string }
    assert.equal(c.status, 'cancelled')
    assert.equal((await waitTask(node.url, a)).status, 'complete')
    const bt = await getJson(`${node.url}/api/v1/tasks/${b}`)
    assert.equal(bt.status, 'cancelled')
    assert.equal(bt.pid, undefined, 'never started')
  } finally { await node.stop() }
})

test('pause stops the process and resume continues it', async () => {
  const node = await testNode()
  try {
    const { body: t } = await post(node.url, { service: 'slow' }, slow(1))
    await childPid(node, t.id)
    const p = await (await fetch(`${node.url}/api/v1/tasks/${t.id}/pause`, { method: 'POST' })).json() as { status: string; pid: number }
    assert.equal(p.status, 'paused')
    const { readFileSync } = await import('node:fs')
    await until(() => /^\S+ \S+ T/.test(readFileSync(`/proc/${p.pid}/stat`, 'utf8').replace(/^\d+ \(.*?\) /, 'x x ')), 2000, 'stopped state')
    await new Promise((r) => setTimeout(r, 1500))
    assert.equal((await getJson(`${node.url}/api/v1/tasks/${t.id}`)).status, 'paused')
    await fetch(`${node.url}/api/v1/tasks/${t.id}/resume`, { method: 'POST' })
    assert.equal((await waitTask(node.url, t.id)).status, 'complete')
  } finally { await node.stop() }
})

test('the notifier is called once, with $id and $myip filled in, and a dead notifier does not fail the task', async () => {
  const hits: string[] = []
  const server = createServer((req, res) => { hits.push(req.url ?? ''); res.end('ok') }).listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port
  const node = await testNode()
  try {
    const { body: t } = await post(node.url, { service: 'echo', notifier: `http://127.0.0.1:${port}/done?$id&ip=$myip` }, [['fileIn0', 'x', 'x.txt']])
    assert.equal((await waitTask(node.url, t.id)).status, 'complete')
    await until(() => hits.length > 0, 5000, 'the notifier')
    await new Promise((r) => setTimeout(r, 300))
    assert.deepEqual(hits, [`/done?${t.id}&ip=127.0.0.1`])
    const { body: t2 } = await post(node.url, { service: 'echo', notifier: 'http://127.0.0.1:1/nobody-here' }, [['fileIn0', 'x', 'x.txt']])
    assert.equal((await waitTask(node.url, t2.id)).status, 'complete')
    await until(() => node.lines.some((l) => l.includes('nobody-here failed')), 7000, 'the failure to be logged')
  } finally {
    await node.stop()
    server.close()
  }
})

test('a tool that fails marks the task failed with its exit code, and its log has the reason', async () => {
  const node = await testNode()
  try {
    const { body: t } = await post(node.url, { service: 'openscad' }, [['fileIn0', 'cube([1,1,1]', 'bad.scad']])
    const done = await waitTask(node.url, t.id)
    assert.equal(done.status, 'failed')
    assert.equal(done.exitCode, 1)
    assert.match(done.error, /exited with code 1/)
    const log = await (await fetch(`${node.url}/api/v1/tasks/${t.id}/log`)).text()
    assert.match(log, /syntax error/i)
    const out = await fetch(`${node.url}/api/v1/tasks/${t.id}/output`)
    assert.equal(out.status, 409)
  } finally { await node.stop() }
})

test('the retention sweeper removes old tasks and their files, and only those', async () => {
  const node = await testNode({ retentionHours: 1 })
  try {
    const { body: t } = await post(node.url, { service: 'echo' }, [['fileIn0', 'old', 'o.txt']])
    await waitTask(node.url, t.id)
    const { body: q } = await post(node.url, { service: 'slow' }, slow(30))
    const files = [join(node.dataDir, 'tasks/in', `${t.id}-0.txt`), join(node.dataDir, 'tasks/out', t.id), join(node.dataDir, 'tasks/log', t.id)]
    assert.ok(files.every((f) => existsSync(f)))
    assert.equal(node.runner.sweep(Date.now() + 30 * 60e3), 0, 'not old yet')
    assert.equal(node.runner.sweep(Date.now() + 2 * 3600e3), 1)
    assert.ok(files.every((f) => !existsSync(f)))
    assert.equal((await fetch(`${node.url}/api/v1/tasks/${t.id}`)).status, 404)
    assert.equal((await getJson(`${node.url}/api/v1/tasks/${q.id}`)).status, 'busy', 'running tasks are kept')
  } finally { await node.stop() }
})

test('server-sent events follow a task from its state now to its end', async () => {
  const node = await testNode()
  try {
    const { body: t } = await post(node.url, { service: 'slow' }, slow(0.5))
    const r = await fetch(`${node.url}/api/v1/tasks/${t.id}/events`)
    assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/)
    const text = await r.text()
    const states = text.split('\n\n').filter(Boolean).map((e) => JSON.parse(e.split('data: ')[1]).status)
    assert.equal(states.at(-1), 'complete')
    assert.ok(states.includes('busy'), states.join(','))
    const again = await (await fetch(`${node.url}/api/v1/tasks/${t.id}/events`)).text()
    assert.equal(again.split('\n\n').filter(Boolean).length, 1, 'an ended task sends its state once and closes')
  } finally { await node.stop() }
})
