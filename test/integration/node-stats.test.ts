// The runner's 'stats' event (which the node's mDNS record follows) must be read as the counts
// are after the change, not one behind: peers rank nodes by the free slots and queue they advertise.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { post, testNode, until } from '../helpers/node.js'

test('at each \'stats\' event the counts already hold the task that was queued or started', async () => {
  const node = await testNode({ slots: 1 })
  try {
    const seen: Array<{ running: number, queued: number }> = []
    node.runner.events.on('stats', () => {
      const { running, queued } = node.runner.stats()
      seen.push({ running, queued })
    })
    const base = `http://127.0.0.1:${node.port}`
    for (let i = 0; i < 3; i++) {
      const r = await post(base, { service: 'slow', format: 'json' }, [['fileIn0', '30\n', `in${i}.txt`]])
      assert.equal(r.status, 201)
      // what a peer would read right after this submission was accepted
      await until(() => seen.length > 0 && seen.at(-1)!.running + seen.at(-1)!.queued === i + 1, 5000, `the event for task ${i + 1}`)
    }
    assert.deepEqual(seen.at(-1), { running: 1, queued: 2 })
  } finally {
    await node.stop()
  }
})
