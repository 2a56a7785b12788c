// Real `rrcloud node` processes on a LAN of network namespaces (test/helpers/lan.ts) find each
// other; avahi, an independent mDNS implementation, sees what they advertise; `rrcloud peers`
// run from another host lists them; load changes and deaths reach the others in time.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { netnsSkip, lines } from '../helpers/netns.js'
import { startAvahi } from '../helpers/avahi.js'
import { createNodeLan, until, type LanNode, type NodeLan } from '../helpers/lan.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const skip = netnsSkip('multi-host tests run in network namespaces')

interface PeerView { name: string, id: string, address: string, port: number, url: string, services: string[], slots: number, free: number, queue: number, printers: unknown[], tokenRequired: boolean }

/** `rrcloud peers --json` from the client host. */
async function peers (nl: NodeLan): Promise<PeerView[]> {
  const r = await nl.rrcloud(['peers', '--json'])
  assert.equal(r.code, 0, `rrcloud peers --json: ${r.stderr}`)
  const list = JSON.parse(r.stdout)
  assert.ok(Array.isArray(list), `an array: ${r.stdout}`)
  return list
}

/** What a node's own browser sees (GET /api/v1/peers), by node id. */
async function seenBy (nl: NodeLan, n: LanNode): Promise<Map<string, any>> {
  const r = await nl.http(`${n.url}/api/v1/peers`)
  assert.equal(r.status, 200, r.text)
  return new Map((r.body as any[]).map((p) => [p.record.id, p]))
}

const avahiTxt = (s: string): Record<string, string> =>
  Object.fromEntries([...s.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1].split(/=(.*)/s).slice(0, 2)))

test('three nodes see each other; avahi and `rrcloud peers` on other hosts list each with its TXT', { skip: skip() }, async () => {
  const nl = await createNodeLan(3, 2)
  try {
    const [h1, h2, h3, , hv] = nl.hosts
    const nodes = await Promise.all([
      nl.startNode(h1, { name: 'alpha', slots: 1 }),
      nl.startNode(h2, { name: 'beta', slots: 2, testServices: false }),
      nl.startNode(h3, { name: 'gamma', slots: 3 }),
    ])
    const ids = nodes.map((n) => n.id).sort()
    for (const n of nodes) {
      const seen = await until(async () => {
        const m = await seenBy(nl, n)
        // the other nodes: a node's own advertisement is not listed
        return ids.every((id) => m.has(id) === (id !== n.id)) ? m : undefined
      }, 5000, `${n.name} to see every other node`)
      for (const other of nodes.filter((x) => x !== n)) {
        const p = seen.get(other.id)
        assert.equal(p.name, other.instance)
        assert.deepEqual(p.addresses, [other.host.address], `${n.name} sees ${other.name} at its own address`)
        assert.equal(p.port, 4468)
        assert.equal(p.record.slots, [1, 2, 3][nodes.indexOf(other)])
      }
    }

    const avahi = await startAvahi(nl.lan, hv)
    try {
      const browse = avahi.browse(['-rpt', '_rrcloud._tcp'])
      const out = lines<string[]>(browse, (s) => s.split(';'))
      await new Promise((resolve) => browse.once('exit', resolve))
      const resolved = out.all.filter((f) => f[0] === '=' && f[2] === 'IPv4')
      for (const [i, n] of nodes.entries()) {
        const line = resolved.find((f) => f[3] === n.instance)
        assert.ok(line, `avahi resolved ${n.instance}: ${JSON.stringify(out.all)}`)
        assert.equal(line[7], n.host.address)
        assert.equal(line[8], '4468')
        const txt = avahiTxt(line[9])
        assert.equal(txt.id, n.id)
        assert.equal(txt.slots, String(i + 1))
        assert.equal(txt.free, String(i + 1))
        assert.equal(txt.queue, '0')
        assert.equal(txt.name, n.name)
        assert.equal(txt.tok, '0')
        assert.ok(txt.svc.split(',').includes('echo'), `services of ${n.name}: ${txt.svc}`)
        assert.equal(txt.svc.split(',').includes('slow'), n.name !== 'beta', `services of ${n.name}: ${txt.svc}`)
      }
    } finally {
      await avahi.close()
    }

    const list = await peers(nl)
    assert.deepEqual(list.map((p) => p.id).sort(), ids)
    for (const [i, n] of nodes.entries()) {
      const p = list.find((x) => x.id === n.id)!
      assert.ok(p.name === n.instance || p.name === n.name, `name ${p.name}`)
      assert.equal(p.address, n.host.address)
      assert.equal(p.port, 4468)
      assert.equal(p.url, n.url)
      assert.equal(p.slots, i + 1)
      assert.equal(p.free, i + 1)
      assert.equal(p.queue, 0)
      assert.equal(p.tokenRequired, false)
      assert.deepEqual(p.printers, [])
      assert.ok(p.services.includes('echo'), `${n.name} offers echo`)
      assert.equal(p.services.includes('slow'), n.name !== 'beta', `only beta lacks slow: ${p.services}`)
    }
  } finally {
    await nl.close()
  }
})

test('free slots and queue follow running tasks, on the other nodes and in `rrcloud peers`', { skip: skip() }, async () => {
  const nl = await createNodeLan(2, 1)
  try {
    const [busy, other] = await Promise.all([
      nl.startNode(nl.hosts[0], { name: 'busy', slots: 1 }),
      nl.startNode(nl.hosts[1], { name: 'other', slots: 1 }),
    ])
    await until(async () => (await seenBy(nl, other)).get(busy.id)?.record.free === 1, 5000, 'busy seen idle')
    const submitted = Date.now()
    for (let i = 0; i < 2; i++) assert.equal((await nl.submitSlow(busy, 4)).status, 201)
    await until(async () => {
      const r = (await seenBy(nl, other)).get(busy.id)?.record
      return r?.free === 0 && r?.queue === 1
    }, 2000, 'the other node to see one running and one queued', 50)
    const lag = Date.now() - submitted
    assert.ok(lag <= 2000, `seen after ${lag} ms`)
    const p = (await peers(nl)).find((x) => x.id === busy.id)
    assert.ok(p, 'busy is listed')
    assert.equal(p.free, 0)
    assert.ok(p.queue >= 0 && p.queue <= 1, `queue ${p.queue}`)
    // both tasks done after ~8 s: back to idle, announced without waiting for a query
    await until(async () => {
      const r = (await seenBy(nl, other)).get(busy.id)?.record
      return r?.free === 1 && r?.queue === 0
    }, 15_000, 'idle again')
    const idle = (await peers(nl)).find((x) => x.id === busy.id)!
    assert.equal(idle.free, 1)
    assert.equal(idle.queue, 0)
  } finally {
    await nl.close()
  }
})

test('a SIGKILLed node leaves the others\' peers and `rrcloud peers` within 6 s; a SIGINTed one at once', { skip: skip() }, async () => {
  const nl = await createNodeLan(3, 1)
  try {
    const [alpha, beta, gamma] = await Promise.all(['alpha', 'beta', 'gamma'].map((name, i) => nl.startNode(nl.hosts[i], { name })))
    for (const n of [alpha, beta]) await until(async () => (await seenBy(nl, n)).size === 2, 5000, `${n.name} to see the others`)
    await sleep(1000)
    const killedAt = Date.now()
    await gamma.stop('SIGKILL')
    const listed = await peers(nl)
    assert.ok(Date.now() - killedAt <= 6000)
    assert.deepEqual(listed.map((p) => p.id).sort(), [alpha.id, beta.id].sort(), 'a fresh look does not list the dead node')
    for (const n of [alpha, beta]) {
      await until(async () => !(await seenBy(nl, n)).has(gamma.id), 6000 - (Date.now() - killedAt), `${n.name} to drop gamma`, 200)
    }
    const gone = Date.now() - killedAt
    assert.ok(gone <= 6000, `dropped after ${gone} ms`)
    assert.ok((await seenBy(nl, alpha)).has(beta.id), 'the live node stays')

    // Ctrl-C: the node says goodbye, the others drop it at once
    const stoppedAt = Date.now()
    await beta.stop('SIGINT')
    assert.equal(beta.child.exitCode, 0, 'a clean stop')
    await until(async () => !(await seenBy(nl, alpha)).has(beta.id), 2000, 'alpha to drop beta after its goodbye', 50)
    assert.ok(Date.now() - stoppedAt <= 2000)
    assert.deepEqual((await peers(nl)).map((p) => p.id), [alpha.id])
  } finally {
    await nl.close()
  }
})

test('nodes nobody looks at are silent on the LAN; an events stream that follows peers makes a node browse and brings the others at once', { skip: skip() }, async () => {
  const nl = await createNodeLan(2, 1)
  try {
    const listen = nl.lan.spawn(nl.client, [process.execPath, '--import', 'tsx', 'test/fixtures/listen.ts', '--address', nl.client.address], { cwd: root })
    const heard = lines<{ event: string, t: number, from?: string, kind?: string }>(listen)
    await heard.wait((l) => l.event === 'ready', 10_000, 'listener ready')
    const [alpha, beta] = await Promise.all(['alpha', 'beta'].map((name, i) => nl.startNode(nl.hosts[i], { name })))
    // past the announcements and their TTL (4 s): nobody holds a record, nobody asks
    await sleep(6000)
    const quietFrom = Date.now()
    await sleep(3000)
    const packets = heard.all.filter((l) => l.event === 'packet' && l.t >= quietFrom)
    assert.deepEqual(packets, [], 'no query, no answer, no update')

    const openedAt = Date.now()
    const stream = nl.lan.spawn(nl.client, ['curl', '-sN', `${alpha.url}/api/v1/events?events=peer`])
    let text = ''
    stream.stdout!.on('data', (d: Buffer) => { text += d.toString() })
    try {
      await until(async () => text.includes(`"id":"${beta.id}"`) && text.includes('"change":"up"'), 3000, 'beta as a peer event', 50)
      assert.ok(Date.now() - openedAt <= 3000)
      assert.ok(heard.all.some((l) => l.kind === 'query' && l.from === alpha.host.address && l.t >= openedAt), 'alpha asked the LAN')
      assert.ok(!heard.all.some((l) => l.kind === 'query' && l.from === beta.host.address && l.t >= quietFrom), 'beta, followed by nobody, never asked')
    } finally {
      stream.kill('SIGKILL')
    }
  } finally {
    await nl.close()
  }
})

test('a node whose interface cannot carry multicast says so once in its log and in meta; a working one says it works', { skip: skip() }, async () => {
  const nl = await createNodeLan(2, 1)
  try {
    const [h1, h2] = nl.hosts
    await nl.lan.run(h1, ['ip', 'link', 'set', 'veth0', 'multicast', 'off'])
    const mute = await nl.startNode(h1, { name: 'mute' })
    const fine = await nl.startNode(h2, { name: 'fine' })
    await sleep(6000)
    const said = mute.out.all.filter((l) => /mdns: cannot work here/.test(l))
    assert.equal(said.length, 1, `said once: ${mute.out.all.join('\n')}`)
    assert.match(said[0], /veth0: no multicast/)
    assert.equal(mute.out.all.filter((l) => /ENETUNREACH|cannot send/.test(l)).length, 0)
    const meta = (await nl.http(`${mute.url}/api/v1/meta`)).body
    assert.equal(meta.mdns.working, false)
    assert.match(meta.mdns.problem, /no network interface can carry multicast/)
    const ok = (await nl.http(`${fine.url}/api/v1/meta`)).body
    assert.deepEqual(ok.mdns, { working: true, interfaces: [`veth0 ${h2.address}`] })
    assert.equal(fine.out.all.filter((l) => /mdns: cannot/.test(l)).length, 0)
  } finally {
    await nl.close()
  }
})
