import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getJson, post, root, until, waitTask } from '../helpers/node.js'
import { startCli } from '../helpers/cli-node.js'

test('after a crash every task is still listed: the running one failed with a reason, queued ones run', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'rrcloud-restart-'))
  try {
    const first = await startCli(dataDir)
    const done = (await post(first.url, { service: 'echo' }, [['fileIn0', 'kept', 'k.txt']])).body.id
    await waitTask(first.url, done)
    const busy = (await post(first.url, { service: 'slow' }, [['fileIn0', '30', 'w.txt']])).body.id
    const queued = [(await post(first.url, { service: 'echo' }, [['fileIn0', 'one', 'a.txt']])).body.id,
      (await post(first.url, { service: 'echo' }, [['fileIn0', 'two', 'b.txt']])).body.id]
    // busy from the moment its slot is given; its pid once the spawn helper has made its folder and started it
    const pid = await until(async () => {
      const t = await getJson(`${first.url}/api/v1/tasks/${busy}`)
      return t.status === 'busy' && t.pid !== undefined ? t.pid as number : undefined
    }, 5000, 'busy with a pid')
    first.proc.kill('SIGKILL')
    await once(first.proc, 'exit')
    assert.doesNotThrow(() => process.kill(pid, 0), 'the tool outlives its node')

    const second = await startCli(dataDir)
    try {
      const all = await getJson(`${second.url}/api/v1/tasks`)
      assert.deepEqual(all.map((t: { id: string }) => t.id), [done, busy, ...queued])
      const b = all.find((t: { id: string }) => t.id === busy)
      assert.equal(b.status, 'failed')
      assert.equal(b.error, 'the node stopped while the task was running')
      await until(() => { try { process.kill(pid, 0); return false } catch { return true } }, 3000, 'the orphaned tool to be stopped')
      assert.equal((await getJson(`${second.url}/api/v1/tasks/${done}`)).status, 'complete')
      for (const [i, id] of queued.entries()) {
        const t = await waitTask(second.url, id)
        assert.equal(t.status, 'complete')
        assert.equal(await (await fetch(`${second.url}/api/v1/tasks/${id}/output`)).text(), ['one', 'two'][i])
      }
    } finally {
      second.proc.kill('SIGKILL')
      await once(second.proc, 'exit')
    }
  } finally { rmSync(dataDir, { recursive: true, force: true }) }
})

test('Ctrl-C stops the node cleanly: the running task is cancelled and recorded, the queued one waits', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'rrcloud-sigint-'))
  try {
    const n = await startCli(dataDir)
    const busy = (await post(n.url, { service: 'slow' }, [['fileIn0', '30', 'w.txt']])).body.id
    const queued = (await post(n.url, { service: 'echo' }, [['fileIn0', 'later', 'l.txt']])).body.id
    const pid = await until(async () => {
      const t = await getJson(`${n.url}/api/v1/tasks/${busy}`)
      return t.status === 'busy' && t.pid !== undefined ? t.pid as number : undefined
    }, 5000, 'busy with a pid')
    n.proc.kill('SIGINT')
    const [code] = await once(n.proc, 'exit')
    assert.equal(code, 0)
    assert.ok(n.out.some((l) => l.includes(`task ${busy} cancelled: node stopped while the task was running`)), n.out.join('\n'))
    assert.throws(() => process.kill(pid, 0), 'the tool was stopped with the node')

    const again = await startCli(dataDir)
    try {
      const b = await getJson(`${again.url}/api/v1/tasks/${busy}`)
      assert.equal(b.status, 'cancelled')
      assert.equal((await waitTask(again.url, queued)).status, 'complete')
    } finally {
      again.proc.kill('SIGINT')
      await once(again.proc, 'exit')
    }
  } finally { rmSync(dataDir, { recursive: true, force: true }) }
})

test('a port in use is a clear error with exit code 2', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'rrcloud-port-'))
  const n = await startCli(dataDir)
  try {
    const port = new URL(n.url).port
    const p = spawn(process.execPath, [join(root, 'bin/run.js'), 'node', '--port', port, '--host', '127.0.0.1', '--data-dir', dataDir, '--no-mdns'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let err = ''
    p.stderr!.on('data', (d) => { err += d })
    const [code] = await once(p, 'exit')
    assert.equal(code, 2)
    assert.match(err, new RegExp(`port ${port} is in use`))
  } finally {
    n.proc.kill('SIGINT')
    await once(n.proc, 'exit')
    rmSync(dataDir, { recursive: true, force: true })
  }
})
