// `rrcloud peers --watch --json` on a client host of a netns LAN: one JSON line per node coming,
// changing and going, as it happens; `rrcloud info` lists the tasks of every node.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { netnsSkip, lines } from '../helpers/netns.js'
import { createNodeLan, printedId } from '../helpers/lan.js'

const skip = netnsSkip('multi-host tests run in network namespaces')

interface WatchEvent { event: 'up' | 'update' | 'down'; id: string; name: string; free: number; slots: number; queue: number; url: string }

test('peers --watch --json follows a node that starts, gets busy and is killed; info lists every node\'s tasks', { skip: skip() }, async () => {
  const nl = await createNodeLan(2, 1)
  try {
    const watch = nl.spawnClient(['peers', '--watch', '--json'])
    const ev = lines<WatchEvent>(watch)
    const started = Date.now()
    const [alpha, beta] = await Promise.all([
      nl.startNode(nl.hosts[0], { name: 'alpha', slots: 1 }),
      nl.startNode(nl.hosts[1], { name: 'beta', slots: 2 }),
    ])
    const up = await ev.wait((e) => e.event === 'up' && e.id === alpha.id, 5000, 'alpha up')
    assert.equal(up.url, alpha.url)
    assert.deepEqual([up.free, up.slots, up.queue], [1, 1, 0])
    assert.ok(Date.now() - started < 8000)

    assert.equal((await nl.submitSlow(alpha, 20)).status, 201)
    const busy = await ev.wait((e) => e.event === 'update' && e.id === alpha.id && e.free === 0, 3000, 'alpha busy')
    assert.equal(busy.slots, 1)

    // the tasks of both nodes in one list
    await ev.wait((e) => e.event === 'up' && e.id === beta.id, 5000, 'beta up')
    const onBeta = printedId(await nl.rrcloud(['--s=' + beta.host.address, 'echo', nl.slowInput(1)]))
    const info = await nl.rrcloud(['info', '--json'])
    assert.equal(info.code, 0, info.stderr)
    const tasks = JSON.parse(info.stdout) as Array<{ id: string; node: string; service: string }>
    assert.ok(tasks.some((t) => t.service === 'slow' && t.node === alpha.url), `alpha's task listed: ${info.stdout}`)
    assert.ok(tasks.some((t) => t.id === onBeta && t.node === beta.url), `beta's task listed: ${info.stdout}`)

    const killedAt = Date.now()
    await alpha.stop('SIGKILL')
    await ev.wait((e) => e.event === 'down' && e.id === alpha.id, 6500, 'alpha down')
    assert.ok(Date.now() - killedAt <= 6500, `down after ${Date.now() - killedAt} ms`)
    assert.ok(!ev.all.some((e) => e.event === 'down' && e.id === beta.id), 'beta stays')

    watch.kill('SIGINT')
    const [code] = await once(watch, 'exit')
    assert.equal(code, 0)
  } finally {
    await nl.close()
  }
})
