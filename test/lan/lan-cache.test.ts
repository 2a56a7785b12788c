// The result cache and the store across a LAN: before choosing, the client asks the candidates
// whether they hold the result or the files. A node holding the result gets the task though it is
// the busier one, and completes it at once; --no-cache goes by load again; a node that holds the
// large file is preferred to an idle one that would need it sent. Real nodes on a netns LAN.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { netnsSkip } from '../helpers/netns.js'
import { createNodeLan, seenFree, nodeOfTask, printedId, until, type LanNode, type NodeLan } from '../helpers/lan.js'

const skip = netnsSkip('multi-host tests run in network namespaces')


async function task (nl: NodeLan, id: string): Promise<{ node: LanNode; t: any }> {
  const node = await until(() => nodeOfTask(nl, id), 5000, `task ${id} on a node`)
  const t = await until(async () => {
    const r = await nl.http(`${node.url}/api/v1/tasks/${id}`)
    return ['complete', 'failed', 'cancelled'].includes(r.body.status) ? r.body : undefined
  }, 20_000, `task ${id} to end`)
  return { node, t }
}

test('a node that holds the result gets the task, busy or not, and answers from its cache; --no-cache goes by load', { skip: skip() }, async () => {
  const nl = await createNodeLan(2, 1)
  try {
    const [a, b] = await Promise.all([
      nl.startNode(nl.hosts[0], { name: 'alpha', slots: 1 }),
      nl.startNode(nl.hosts[1], { name: 'beta', slots: 1 }),
    ])
    const file = join(nl.dir, 'hello.txt')
    writeFileSync(file, 'hello from the cache\n')
    const first = await task(nl, printedId(await nl.rrcloud(['echo', file])))
    assert.equal(first.t.status, 'complete')
    assert.equal(first.t.cached, undefined)
    const holder = first.node
    const other = holder === a ? b : a
    // the holder's only slot is taken: on load alone the other node is the better choice
    assert.equal((await nl.submitSlow(holder, 30)).status, 201)
    await seenFree(nl, other, holder, 0)

    const again = await task(nl, printedId(await nl.rrcloud(['echo', file])))
    assert.equal(again.node.name, holder.name, 'the node with the result')
    assert.equal(again.t.status, 'complete')
    assert.equal(again.t.cached, first.t.id, 'from the cache: the task that made it')

    const fresh = await task(nl, printedId(await nl.rrcloud(['--no-cache', 'echo', file])))
    assert.equal(fresh.node.name, other.name, '--no-cache: by load')
    assert.equal(fresh.t.cached, undefined)
  } finally {
    await nl.close()
  }
})

test('a node that holds the large file is preferred to an idle one that lacks it', { skip: skip() }, async () => {
  const nl = await createNodeLan(2, 1)
  try {
    const [a, b] = await Promise.all([
      nl.startNode(nl.hosts[0], { name: 'alpha', slots: 1 }),
      nl.startNode(nl.hosts[1], { name: 'beta', slots: 1 }),
    ])
    const big = join(nl.dir, 'big.bin')
    writeFileSync(big, Buffer.alloc(24 << 20, 7))
    const first = await task(nl, printedId(await nl.rrcloud(['echo', big])))
    assert.equal(first.t.status, 'complete')
    const holder = first.node
    const other = holder === a ? b : a
    assert.equal((await nl.submitSlow(holder, 30)).status, 201)
    await seenFree(nl, other, holder, 0)
    // not the result (--no-cache), but the 24 MiB input is there: worth waiting for a slot
    const again = await nl.rrcloud(['--no-cache', 'echo', big])
    const id = printedId(again)
    assert.equal((await until(() => nodeOfTask(nl, id), 5000, 'the task'))!.name, holder.name)
    const held = await nl.http(`${holder.url}/api/v1/tasks/${id}`)
    assert.equal(held.body.status, 'queued', 'it waits behind the slow task there')
  } finally {
    await nl.close()
  }
})
