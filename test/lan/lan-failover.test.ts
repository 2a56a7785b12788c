// The client moves on when the best node cannot take a task: it refuses (token), it is advertised
// but gone, or it dies while a synchronous task runs there. Real nodes on a netns LAN.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { netnsSkip, lines } from '../helpers/netns.js'
import { createNodeLan, seenFree, lanBatch, nodeOfTask, printedId, root, tasksOn, until, type LanNode, type NodeLan } from '../helpers/lan.js'

const skip = netnsSkip('multi-host tests run in network namespaces')


test('a node that wants a token refuses; the task goes to the next best node', { skip: skip() }, async () => {
  const nl = await createNodeLan(2, 1)
  try {
    const [locked, open] = await Promise.all([
      nl.startNode(nl.hosts[0], { name: 'locked', slots: 4, token: 's3cret' }),
      nl.startNode(nl.hosts[1], { name: 'open', slots: 1 }),
    ])
    // open is busy: on load alone the locked node would be chosen
    assert.equal((await nl.submitSlow(open, 30)).status, 201)
    await seenFree(nl, locked, open, 0)
    const r = await nl.rrcloud(['slow', nl.slowInput(1)])
    const id = printedId(r)
    assert.equal((await nodeOfTask(nl, id))?.name, 'open')
    assert.deepEqual(await tasksOn(nl, locked), [])
    // with the token the locked node is the best again
    const mine = printedId(await nl.rrcloud(['--token=s3cret', 'slow', nl.slowInput(1)]))
    assert.equal((await nodeOfTask(nl, mine))?.name, 'locked')
  } finally {
    await nl.close()
  }
})

test('an advertised node that no longer answers HTTP is skipped at once', { skip: skip() }, async () => {
  const nl = await createNodeLan(2, 1)
  try {
    const live = await nl.startNode(nl.hosts[1], { name: 'live', slots: 1 })
    // a record as a node leaves it when its HTTP server is gone: idle, 8 free slots, the best
    // candidate on paper; nothing listens at its address (connections are refused)
    const ghost = nl.lan.spawn(nl.hosts[0], [process.execPath, '--import', 'tsx', 'test/fixtures/advertise.ts',
      '--name', 'ghost', '--id', 'ghost-id', '--port', '4468', '--services', 'echo,slow', '--slots', '8',
      '--interface', 'veth0', '--host', 'ghost'], { cwd: root })
    await lines(ghost).wait((l) => l.event === 'ready', 10_000, 'ghost advertised')
    await until(async () => {
      const r = await nl.http(`${live.url}/api/v1/peers`)
      return (r.body as any[]).some((p) => p.record.id === 'ghost-id')
    }, 5000, 'the ghost to be seen')
    for (let i = 0; i < 2; i++) {
      const r = await nl.rrcloud(['slow', nl.slowInput(1)])
      assert.equal((await nodeOfTask(nl, printedId(r)))?.name, 'live')
      assert.ok(r.ms < 5000, `took ${r.ms} ms`)
    }
  } finally {
    await nl.close()
  }
})

/** Two nodes; the batch looks, the node it would send to first is SIGKILLed, then the batch submits. */
async function killedBetween (): Promise<void> {
  const nl = await createNodeLan(2, 1)
  try {
    const [big, small] = await Promise.all([
      nl.startNode(nl.hosts[0], { name: 'big', slots: 3 }),
      nl.startNode(nl.hosts[1], { name: 'small', slots: 1 }),
    ])
    const batch = lanBatch(nl, 3, nl.slowInput(1), { pause: true })
    batch.placed.catch(() => {})
    const urls = await batch.candidates
    // the first pick is drawn among nodes with free slots (3 to 1 for big): kill the one drawn
    const [first, other] = urls[0] === big.url ? [big, small] : [small, big]
    assert.deepEqual([...urls].sort(), [big.url, small.url].sort(), 'both nodes are candidates')
    await first.stop('SIGKILL')
    const killedAt = Date.now()
    batch.go()
    const placed = await batch.placed
    assert.deepEqual(placed.map((p) => p.url), [other.url, other.url, other.url])
    assert.ok(Date.now() - killedAt < 5000, `placed after ${Date.now() - killedAt} ms: no waiting on the dead node`)
    assert.equal((await tasksOn(nl, other)).length, 3)
  } finally {
    await nl.close()
  }
}

test('a node killed between discovery and submit is skipped, and avoided for the rest of the batch', { skip: skip() }, killedBetween)

/** Polls every node until one runs a `slow` task; returns that node. */
async function runningOn (nl: NodeLan, nodes: LanNode[], except: string[] = []): Promise<LanNode> {
  return until(async () => {
    for (const n of nodes) {
      if (!n.running()) continue
      const busy = (await tasksOn(nl, n, 'busy')).filter((id) => !except.includes(id))
      if (busy.length) return n
    }
    return undefined
  }, 15_000, 'a node to run the task', 100)
}

test('a synchronous task whose node dies mid-run is run again elsewhere', { skip: skip() }, async () => {
  const nl = await createNodeLan(2, 1)
  try {
    const nodes = await Promise.all(['alpha', 'beta'].map((name, i) => nl.startNode(nl.hosts[i], { name, slots: 1 })))
    const out = `${nl.dir}/result.txt`
    const client = nl.rrcloud(['--wait', 'slow', nl.slowInput(3), `-o${out}`], { timeoutMs: 60_000 })
    const first = await runningOn(nl, nodes)
    await first.stop('SIGKILL')
    const other = nodes.find((n) => n !== first)!
    const r = await client
    assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`)
    const done = await tasksOn(nl, other, 'complete')
    assert.equal(done.length, 1, 'run once more, on the other node')
    assert.equal(readFileSync(out, 'utf8').trim(), '3')
  } finally {
    await nl.close()
  }
})

test('a task is run again only once: when the second node dies too the client fails', { skip: skip() }, async () => {
  const nl = await createNodeLan(3, 1)
  try {
    const nodes = await Promise.all(['alpha', 'beta', 'gamma'].map((name, i) => nl.startNode(nl.hosts[i], { name, slots: 1 })))
    const client = nl.rrcloud(['--wait', 'slow', nl.slowInput(5)], { timeoutMs: 60_000 })
    const first = await runningOn(nl, nodes)
    await first.stop('SIGKILL')
    const second = await runningOn(nl, nodes.filter((n) => n !== first))
    await second.stop('SIGKILL')
    const r = await client
    assert.notEqual(r.code, 0, 'failed')
    assert.match(r.stderr, new RegExp(second.host.address.replace(/\./g, '\\.') + '|' + second.name), `names the node: ${r.stderr}`)
    const third = nodes.find((n) => n !== first && n !== second)!
    assert.deepEqual(await tasksOn(nl, third), [], 'not tried a third time')
  } finally {
    await nl.close()
  }
})
