// Where `rrcloud SERVICE ...` sends a task when nobody told it where: it discovers the nodes on a
// LAN of network namespaces, ranks them by load and by what they offer, and submits to the best.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { netnsSkip } from '../helpers/netns.js'
import { createNodeLan, lanBatch, nodeOfTask, printedId, tasksOn, until, type LanNode, type NodeLan } from '../helpers/lan.js'

const skip = netnsSkip('multi-host tests run in network namespaces')

/** Waits until `watcher` (another node) sees `n` with this many free slots and queued tasks. */
async function seenAs (nl: NodeLan, watcher: LanNode, n: LanNode, free: number, queue: number): Promise<void> {
  await until(async () => {
    const r = await nl.http(`${watcher.url}/api/v1/peers`)
    const p = (r.body as any[]).find((x) => x.record.id === n.id)
    return p?.record.free === free && p?.record.queue === queue
  }, 5000, `${n.name} to be seen with free ${free}, queue ${queue}`)
}

test('a new task goes to the idle node while the other is busy, whichever of them wins a tie', { skip: skip() }, async () => {
  const nl = await createNodeLan(2, 1)
  try {
    const [alpha, beta] = await Promise.all([
      nl.startNode(nl.hosts[0], { name: 'alpha', slots: 1 }),
      nl.startNode(nl.hosts[1], { name: 'beta', slots: 1 }),
    ])
    // keep alpha busy: one task running, one queued
    for (let i = 0; i < 2; i++) assert.equal((await nl.submitSlow(alpha, 30)).status, 201)
    await seenAs(nl, beta, alpha, 0, 1)
    const id = printedId(await nl.rrcloud(['slow', nl.slowInput(1)]))
    assert.equal((await nodeOfTask(nl, id))?.name, 'beta')

    // now beta is busy too, and alpha has one more waiting: the next goes to beta (less to wait for)
    await until(async () => (await tasksOn(nl, beta, 'complete')).includes(id), 10_000, 'the first task to end')
    await seenAs(nl, alpha, beta, 1, 0)
    for (let i = 0; i < 2; i++) assert.equal((await nl.submitSlow(beta, 30)).status, 201)
    await seenAs(nl, alpha, beta, 0, 1)
    assert.equal((await nl.submitSlow(alpha, 30)).status, 201)
    await seenAs(nl, beta, alpha, 0, 2)
    const next = printedId(await nl.rrcloud(['slow', nl.slowInput(1)]))
    assert.equal((await nodeOfTask(nl, next))?.name, 'beta', 'beta has fewer tasks ahead')
  } finally {
    await nl.close()
  }
})

test('a service offered by one node only goes there, however busy it is', { skip: skip() }, async () => {
  const nl = await createNodeLan(3, 1)
  try {
    const [alpha, beta, gamma] = await Promise.all([
      nl.startNode(nl.hosts[0], { name: 'alpha', slots: 2, testServices: false }),
      nl.startNode(nl.hosts[1], { name: 'beta', slots: 2, testServices: false }),
      nl.startNode(nl.hosts[2], { name: 'gamma', slots: 1 }),
    ])
    for (let i = 0; i < 3; i++) assert.equal((await nl.submitSlow(gamma, 30)).status, 201)
    await seenAs(nl, alpha, gamma, 0, 2)
    const r = await nl.rrcloud(['slow', nl.slowInput(1)])
    const id = printedId(r)
    assert.equal((await nodeOfTask(nl, id))?.name, 'gamma')
    assert.deepEqual(await tasksOn(nl, alpha), [])
    assert.deepEqual(await tasksOn(nl, beta), [])

    // the tools every node has go elsewhere: echo to an idle node, not to gamma
    const echo = printedId(await nl.rrcloud(['echo', nl.slowInput(1)]))
    assert.notEqual((await nodeOfTask(nl, echo))?.name, 'gamma')

    // nobody offers it: a clear error, nothing submitted anywhere
    const none = await nl.rrcloud(['nosuchservice', nl.slowInput(1)])
    assert.notEqual(none.code, 0)
    assert.match(none.stderr, /nosuchservice/)
    assert.equal((await tasksOn(nl, gamma)).length, 4)
  } finally {
    await nl.close()
  }
})

test('a node given with --s joins the discovered ones', { skip: skip() }, async () => {
  const nl = await createNodeLan(2, 1)
  try {
    // hidden offers slow but is not advertised; seen lacks it
    const hidden = await nl.startNode(nl.hosts[0], { name: 'hidden', slots: 1, mdns: false })
    const seen = await nl.startNode(nl.hosts[1], { name: 'seen', slots: 1, testServices: false })
    const echo = printedId(await nl.rrcloud(['echo', nl.slowInput(1)]))
    assert.equal((await nodeOfTask(nl, echo))?.name, 'seen', 'without --s, only the advertised node')
    const id = printedId(await nl.rrcloud([`--s=${hidden.host.address}`, 'slow', nl.slowInput(1)]))
    assert.equal((await nodeOfTask(nl, id))?.name, 'hidden')
    assert.deepEqual(await tasksOn(nl, seen), [echo])
  } finally {
    await nl.close()
  }
})

test('a batch submitted at once from one process spreads by slots (src/client/lan.ts)', { skip: skip() }, async () => {
  const nl = await createNodeLan(2, 1)
  try {
    const [one, two] = await Promise.all([
      nl.startNode(nl.hosts[0], { name: 'one', slots: 1 }),
      nl.startNode(nl.hosts[1], { name: 'two', slots: 2 }),
    ])
    // both up and answering on the LAN (each sees the other) before the client looks
    await seenAs(nl, one, two, 2, 0)
    await seenAs(nl, two, one, 1, 0)
    const placed = await lanBatch(nl, 6, nl.slowInput(3)).placed
    assert.equal(placed.length, 6)
    const count = (n: LanNode) => placed.filter((p) => p.url === n.url).length
    assert.deepEqual([count(one), count(two)], [2, 4], `placed: ${JSON.stringify(placed)}`)
    assert.equal((await tasksOn(nl, two)).length, 4, 'the node holds what the client says it placed there')
  } finally {
    await nl.close()
  }
})
