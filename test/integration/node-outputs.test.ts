// Nothing lost, nothing half-served: an output is served only once its task completed, and a
// crash under load leaves every completed output equal to what its tool made.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fixtures, getJson, post, testNode, testServices, until, waitTask } from '../helpers/node.js'
import { startCli } from '../helpers/cli-node.js'

test('the partial output of a busy or failed task is never served', async () => {
  const node = await testNode({ serviceDirs: [testServices, join(fixtures, 'partial-services')] })
  try {
    const script = 'echo partial > "$1"\nsleep 1.5\nexit 3\n'
    const { body: t } = await post(node.url, { service: 'partial' }, [['fileIn0', script, 'p.sh']])
    const file = t.out.split('/').pop()
    await until(async () => (await getJson(`${node.url}/api/v1/tasks/${t.id}`)).status === 'busy', 5000, 'busy')
    // the tool has written part of its output by now
    await until(() => existsSync(join(node.dataDir, 'tasks/run', t.id, file)), 5000, 'the partial output')
    assert.equal((await fetch(`${node.url}/tasks/out/${file}`)).status, 409)
    assert.equal((await fetch(`${node.url}/api/v1/tasks/${t.id}/output`)).status, 409)
    const done = await waitTask(node.url, t.id)
    assert.equal(done.status, 'failed')
    assert.equal((await fetch(`${node.url}/tasks/out/${file}`)).status, 409)
    assert.deepEqual(readdirSync(join(node.dataDir, 'tasks/out')), [], 'no output kept')
    assert.deepEqual(readdirSync(join(node.dataDir, 'tasks/run')), [], 'its folder is gone')
    // a complete one is served at both addresses
    const ok = await post(node.url, { service: 'partial' }, [['fileIn0', 'echo whole > "$1"\n', 'w.sh']])
    await waitTask(node.url, ok.body.id)
    assert.equal(await (await fetch(`${node.url}/${ok.body.out}`)).text(), 'whole\n')
    assert.equal((await fetch(`${node.url}/tasks/out/${ok.body.id}.stl`)).status, 404)
  } finally { await node.stop() }
})

test('SIGKILL under load, then a restart: every complete task\'s output equals its input, and every input is whole', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'rrcloud-crash-'))
  try {
    const first = await startCli(dataDir)
    const sent = new Map<string, Buffer>()
    const submit = async (url: string, n: number) => {
      const body = Buffer.alloc(1 << 20, `task ${n} `)
      const r = await post(url, { service: 'echo' }, [['fileIn0', body, `${n}.txt`]])
      assert.equal(r.status, 201)
      sent.set(r.body.id, body)
    }
    for (let n = 0; n < 40; n++) await submit(first.url, n)
    await until(async () => (await getJson(`${first.url}/api/v1/tasks`)).some((t: { status: string }) => t.status === 'complete'), 10000, 'a first task to complete')
    first.proc.kill('SIGKILL')
    await once(first.proc, 'exit')

    const second = await startCli(dataDir)
    try {
      const all = await until(async () => {
        const list = await getJson(`${second.url}/api/v1/tasks`)
        return list.every((t: { status: string }) => ['complete', 'failed'].includes(t.status)) ? list : undefined
      }, 60000, 'every task to end')
      assert.equal(all.length, sent.size, 'every accepted task is listed')
      let complete = 0
      for (const t of all) {
        assert.ok(sent.get(t.id)!.equals(readFileSync(join(dataDir, t.in))), `task ${t.id}'s input is whole`)
        if (t.status !== 'complete') { assert.equal(t.error, 'the node stopped while the task was running'); continue }
        complete++
        const out = Buffer.from(await (await fetch(`${second.url}/api/v1/tasks/${t.id}/output`)).arrayBuffer())
        assert.ok(out.equals(sent.get(t.id)!), `task ${t.id}'s output is its input (${out.length} bytes)`)
      }
      assert.ok(complete >= sent.size - 2, `${complete} of ${sent.size} complete: only those running at the crash failed`)
    } finally {
      second.proc.kill('SIGTERM')
      await once(second.proc, 'exit')
    }
  } finally { rmSync(dataDir, { recursive: true, force: true }) }
})
