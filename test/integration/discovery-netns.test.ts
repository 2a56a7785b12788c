// Discovery on a real LAN made of network namespaces (see test/helpers/netns.ts): advertisers and
// browsers run as separate processes, one per namespace, and avahi is the independent witness.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { netnsSkip, createLan, lines, type Lan, type LanHost, type Lines } from '../helpers/netns.js'
import { startAvahi } from '../helpers/avahi.js'
import type { Peer } from '../../src/discovery/index.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const skip = netnsSkip('discovery tests run in network namespaces')

type Line = Record<string, any> & { event: string, t: number }

function run (lan: Lan, host: LanHost, script: string, args: string[]): { child: ReturnType<Lan['spawn']>, out: Lines<Line> } {
  const child = lan.spawn(host, [process.execPath, '--import', 'tsx', `test/fixtures/${script}`, ...args], { cwd: root })
  return { child, out: lines<Line>(child) }
}

async function advertise (lan: Lan, host: LanHost, args: string[]) {
  const a = run(lan, host, 'advertise.ts', args)
  const ready = await a.out.wait((l) => l.event === 'ready', 10_000, `advertiser ready in ${host.ns}`)
  return { ...a, name: ready.name as string }
}

async function browse (lan: Lan, host: LanHost) {
  const b = run(lan, host, 'browse.ts', [])
  await b.out.wait((l) => l.event === 'ready', 10_000, 'browser ready')
  return b
}

const findLast = <T>(all: T[], match: (x: T) => boolean): T | undefined => [...all].reverse().find(match)
const isPeer = (event: string, name: string) => (l: Line): boolean => l.event === event && l.peer?.name === name

test('a running browser and a fresh discover() find three nodes, each at its own address', { skip: skip() }, async () => {
  const lan = await createLan(4)
  try {
    const [h1, h2, h3, hb] = lan.hosts
    const b = await browse(lan, hb)
    // all three share the machine's host name: two must rename their host to stay resolvable
    const ads = await Promise.all([
      advertise(lan, h1, ['--name', 'alpha', '--id', 'id-a', '--port', '4001', '--services', 'echo,openscad']),
      advertise(lan, h2, ['--name', 'beta', '--id', 'id-b', '--port', '4002', '--printers', 'mk3=/dev/ttyACM0']),
      advertise(lan, h3, ['--name', 'gamma', '--id', 'id-c', '--port', '4003', '--load', '0.5']),
    ])
    for (const a of ads) await b.out.wait(isPeer('up', a.name), 3000, `up ${a.name}`)

    const once = run(lan, hb, 'browse.ts', ['--once', '--timeout', '400'])
    const { peers, t, startedAt } = await once.out.wait((l) => l.event === 'peers', 10_000, 'discover()')
    assert.ok(t - startedAt < 1000, `discover() took ${t - startedAt} ms`)
    const byId = new Map((peers as Peer[]).map((p) => [p.record.id, p]))
    assert.deepEqual([...byId.keys()].sort(), ['id-a', 'id-b', 'id-c'])
    const hosts = [h1, h2, h3]
    for (const [i, id] of ['id-a', 'id-b', 'id-c'].entries()) {
      const p = byId.get(id)!
      assert.equal(p.name, ads[i].name)
      assert.match(p.name, /^(alpha|beta|gamma)-[0-9a-f]{6}$/)
      assert.equal(p.port, 4001 + i)
      assert.deepEqual(p.addresses, [hosts[i].address], `${p.name} resolves to its own namespace`)
      assert.match(p.host, /\.local$/)
    }
    assert.equal(new Set((peers as Peer[]).map((p) => p.host)).size, 3, 'host names were made unique')
    assert.deepEqual(byId.get('id-a')!.record.services, ['echo', 'openscad'])
    assert.deepEqual(byId.get('id-b')!.record.printers, [{ name: 'mk3', port: '/dev/ttyACM0', state: 'idle' }])
    assert.equal(byId.get('id-c')!.record.load, 0.5)
  } finally {
    await lan.close()
  }
})

test('a load change reaches a running browser within 1 s as an update, with no goodbye in between', { skip: skip() }, async () => {
  const lan = await createLan(2)
  try {
    const b = await browse(lan, lan.hosts[1])
    // a long TTL: no cache-maintenance query can bring the new TXT, only the unsolicited update
    const a = await advertise(lan, lan.hosts[0], ['--name', 'busy', '--id', 'id-busy', '--ttl', '120'])
    await b.out.wait(isPeer('up', a.name), 3000, 'up')
    const latencies: number[] = []
    for (const load of [0.25, 0.5, 1.75, 0.1, 0]) {
      a.child.stdin!.write(`load ${load}\n`)
      const sent = await a.out.wait((l) => l.event === 'update' && l.partial.load === load, 2000, 'update sent')
      const seen = await b.out.wait((l) => isPeer('update', a.name)(l) && l.peer.record.load === load, 2000, `load ${load} seen`)
      latencies.push(seen.t - sent.t)
      await sleep(300)
    }
    assert.ok(Math.max(...latencies) <= 1000, `latencies ${latencies.join(', ')} ms`)
    // a burst of changes is merged: the last value arrives, not one packet per change
    const before = b.out.all.length
    for (let i = 1; i <= 20; i++) a.child.stdin!.write(`set {"queue":${i}}\n`)
    await b.out.wait((l) => isPeer('update', a.name)(l) && l.peer.record.queue === 20, 2000, 'queue 20')
    await sleep(600)
    const updates = b.out.all.slice(before).filter(isPeer('update', a.name))
    assert.ok(updates.length <= 3, `${updates.length} updates for 20 changes`)
    assert.equal(b.out.all.filter(isPeer('down', a.name)).length, 0, 'never left')
    assert.equal(b.out.all.filter(isPeer('up', a.name)).length, 1, 'came up once')
  } finally {
    await lan.close()
  }
})

test('a node nobody asks about keeps its changes to itself; once a browser asks, the first change goes out at once and a burst as one', { skip: skip() }, async () => {
  const lan = await createLan(3)
  try {
    const [h1, hl, hb] = lan.hosts
    const l = run(lan, hl, 'listen.ts', ['--address', hl.address])
    await l.out.wait((x) => x.event === 'ready', 10_000, 'listener ready')
    const a = await advertise(lan, h1, ['--name', 'quiet', '--id', 'id-quiet'])
    const fromA = (since: number) => l.out.all.filter((x) => x.event === 'packet' && x.from === h1.address && x.t >= since)
    // announced twice, 1 s apart (RFC 6762 §8.3); a cache that heard that holds it for its TTL (4 s)
    await sleep(5500)
    const quietFrom = Date.now()
    for (const load of [0.5, 0.75, 1]) {
      a.child.stdin!.write(`load ${load}\n`)
      await a.out.wait((x) => x.event === 'update' && x.partial.load === load, 2000, 'update made')
      await sleep(300)
    }
    a.child.stdin!.write('set {"queue":3}\n')
    await sleep(1500)
    assert.deepEqual(fromA(quietFrom), [], 'nobody asked: no packet from the node')
    assert.equal(l.out.all.filter((x) => x.event === 'packet' && x.t >= quietFrom).length, 0, 'a silent LAN')

    // a browser asks, and gets the record as it is now
    const b = await browse(lan, hb)
    const up = await b.out.wait(isPeer('up', a.name), 3000, 'up')
    assert.equal(up.peer.record.load, 1)
    assert.equal(up.peer.record.queue, 3)
    await sleep(1200)
    a.child.stdin!.write('load 0.25\n')
    const sent = await a.out.wait((x) => x.event === 'update' && x.partial.load === 0.25, 2000, 'update made')
    const seen = await b.out.wait((x) => isPeer('update', a.name)(x) && x.peer.record.load === 0.25, 2000, 'load 0.25 seen')
    assert.ok(seen.t - sent.t <= 1000, `the first change after a quiet time reached the browser in ${seen.t - sent.t} ms`)
    // changes right after: merged, at most one packet a second
    const burstAt = Date.now()
    for (let i = 1; i <= 20; i++) a.child.stdin!.write(`set {"queue":${10 + i}}\n`)
    await b.out.wait((x) => isPeer('update', a.name)(x) && x.peer.record.queue === 30, 2500, 'queue 30 seen')
    const carrying = fromA(burstAt).filter((x) => x.kind === 'response' && Object.keys(x.txt).length > 0)
    assert.ok(carrying.length <= 2, `${carrying.length} responses from the node for 20 changes`)
    assert.equal(b.out.all.filter(isPeer('down', a.name)).length, 0, 'never left')
  } finally {
    await lan.close()
  }
})

test('a SIGKILLed node leaves a running browser within 6 s while a live one stays', { skip: skip() }, async () => {
  const lan = await createLan(3)
  try {
    const b = await browse(lan, lan.hosts[2])
    const dead = await advertise(lan, lan.hosts[0], ['--name', 'doomed', '--id', 'id-doomed'])
    const live = await advertise(lan, lan.hosts[1], ['--name', 'alive', '--id', 'id-alive'])
    await b.out.wait(isPeer('up', dead.name), 3000, 'up')
    await b.out.wait(isPeer('up', live.name), 3000, 'up')
    await sleep(1000)
    const killedAt = Date.now()
    dead.child.kill('SIGKILL')
    const down = await b.out.wait(isPeer('down', dead.name), 8000, 'down after SIGKILL')
    assert.equal(down.reason, 'expired')
    assert.ok(down.t - killedAt <= 6000, `left after ${down.t - killedAt} ms`)
    await sleep(5000)
    assert.equal(b.out.all.filter(isPeer('down', live.name)).length, 0, 'the live node was kept by refresh queries')
  } finally {
    await lan.close()
  }
})

test('a node that stops says goodbye and leaves at once', { skip: skip() }, async () => {
  const lan = await createLan(2)
  try {
    const b = await browse(lan, lan.hosts[1])
    const a = await advertise(lan, lan.hosts[0], ['--name', 'polite', '--id', 'id-polite', '--ttl', '120'])
    await b.out.wait(isPeer('up', a.name), 3000, 'up')
    const stoppedAt = Date.now()
    a.child.kill('SIGTERM')
    await a.out.wait((l) => l.event === 'closed', 3000, 'closed')
    const down = await b.out.wait(isPeer('down', a.name), 3000, 'down')
    assert.equal(down.reason, 'goodbye')
    assert.ok(down.t - stoppedAt < 1000, `left after ${down.t - stoppedAt} ms`)
  } finally {
    await lan.close()
  }
})

test('a node that finds its name taken on the LAN renames itself', { skip: skip() }, async () => {
  const lan = await createLan(3)
  try {
    const [h1, h2, hb] = lan.hosts
    const b = await browse(lan, hb)
    // the same name and node id (a copied data folder): the same instance name
    const same = ['--name', 'twin', '--id', 'copied-id', '--port', '4468']
    const first = await advertise(lan, h1, same)
    const second = run(lan, h2, 'advertise.ts', same)
    const renamed = await second.out.wait((l) => l.event === 'rename', 5000, 'rename')
    assert.equal(renamed.name, `${first.name}-2`)
    const up1 = await b.out.wait(isPeer('up', first.name), 3000, 'first up')
    const up2 = await b.out.wait(isPeer('up', `${first.name}-2`), 3000, 'second up')
    assert.deepEqual(up1.peer.addresses, [h1.address])
    assert.deepEqual(up2.peer.addresses, [h2.address])
    assert.notEqual(up1.peer.host, up2.peer.host, 'the host name was renamed too')
    assert.equal(first.out.all.filter((l) => l.event === 'rename').length, 0, 'the first keeps its name')
  } finally {
    await lan.close()
  }
})

test('two nodes that claim the same name at the same moment end up with distinct names', { skip: skip() }, async () => {
  const lan = await createLan(3)
  try {
    const [h1, h2, hb] = lan.hosts
    const b = await browse(lan, hb)
    // probing together, each hears the other's proposed records (RFC 6762 §8.2) and one takes another name
    const at = String(Date.now() + 2500)
    const args = ['--name', 'pair', '--id', 'pair-id', '--start-at', at]
    const ads = [run(lan, h1, 'advertise.ts', args), run(lan, h2, 'advertise.ts', args)]
    for (const a of ads) await a.out.wait((l) => l.event === 'ready', 10_000, 'ready')
    await sleep(2500)
    const names = ads.map((a) => (findLast(a.out.all, (l) => l.event === 'ready' || l.event === 'rename')!.name as string))
    assert.notEqual(names[0], names[1])
    assert.equal(ads.filter((a) => a.out.all.some((l) => l.event === 'rename')).length, 1, 'exactly one renamed')
    for (const [i, name] of names.entries()) {
      const last = findLast(b.out.all, (l) => l.peer?.name === name)
      assert.ok(last && last.event !== 'down', `${name} is up in the browser`)
      assert.deepEqual(last.peer.addresses, [[h1, h2][i].address], `${name} resolves to its own address only`)
    }
  } finally {
    await lan.close()
  }
})

test('the interface option pins where a node advertises and listens', { skip: skip() }, async () => {
  const lan = await createLan(2)
  try {
    const [h1, hb] = lan.hosts
    // a second interface in h1, on a network the browser cannot reach
    await lan.run(h1, ['ip', 'link', 'add', 'side0', 'type', 'veth', 'peer', 'name', 'side1'])
    await lan.run(h1, ['ip', 'addr', 'add', '192.168.99.1/24', 'dev', 'side0'])
    await lan.run(h1, ['ip', 'link', 'set', 'side0', 'up'])
    await lan.run(h1, ['ip', 'link', 'set', 'side1', 'up'])
    const b = run(lan, hb, 'browse.ts', ['--interface', 'veth0'])
    await b.out.wait((l) => l.event === 'ready', 10_000, 'browser ready')
    const all = await advertise(lan, h1, ['--name', 'all', '--id', 'i1', '--host', 'all'])
    const byName = await advertise(lan, h1, ['--name', 'byname', '--id', 'i2', '--host', 'byname', '--interface', 'veth0'])
    const byAddr = await advertise(lan, h1, ['--name', 'byaddr', '--id', 'i3', '--host', 'byaddr', '--interface', h1.address])
    const up = async (name: string): Promise<string[]> => (await b.out.wait(isPeer('up', name), 3000, `up ${name}`)).peer.addresses
    assert.deepEqual((await up(all.name)).sort(), [h1.address, '192.168.99.1'].sort(), 'unpinned: every interface')
    assert.deepEqual(await up(byName.name), [h1.address])
    assert.deepEqual(await up(byAddr.name), [h1.address])
    const bad = run(lan, h1, 'advertise.ts', ['--name', 'bad', '--id', 'i4', '--interface', 'nope0'])
    const err = await bad.out.wait((l) => l.event === 'error', 10_000, 'error')
    assert.match(err.message, /no interface named or addressed nope0/)
  } finally {
    await lan.close()
  }
})

test('socket errors are reported, not thrown', { skip: skip() }, async () => {
  const lan = await createLan(2)
  try {
    const [h1, h2] = lan.hosts
    // a socket on 5353 without SO_REUSEADDR: our bind must fail
    const hog = lan.spawn(h1, [process.execPath, '-e', "require('dgram').createSocket('udp4').bind(5353, () => console.log('bound'))"])
    await lines(hog, (s) => s).wait((s) => s === 'bound', 10_000, 'port 5353 taken')
    const blocked = run(lan, h1, 'advertise.ts', ['--name', 'blocked', '--id', 'e1'])
    const err = await blocked.out.wait((l) => l.event === 'error', 10_000, 'bind error')
    assert.match(err.message, /EADDRINUSE/, 'ready rejected with the socket error (a crash would print no JSON line)')

  } finally {
    await lan.close()
  }
})

test('on a LAN with no route at all (link-local style, an isolated switch) nodes are found and nothing is logged over and over', { skip: skip() }, async () => {
  const lan = await createLan(2)
  try {
    const [h1, hb] = lan.hosts
    // no default route and no multicast route: sending to 224.0.0.251 works only when the interface is named
    for (const h of lan.hosts) await lan.run(h, ['ip', 'route', 'del', '224.0.0.0/4'])
    assert.doesNotMatch(await lan.run(h1, ['ip', 'route']), /default|224\.0\.0\.0/)
    const b = await browse(lan, hb)
    const a = await advertise(lan, h1, ['--name', 'offgrid', '--id', 'id-offgrid'])
    const up = await b.out.wait(isPeer('up', a.name), 5000, 'up without a route')
    assert.deepEqual(up.peer.addresses, [h1.address])
    await sleep(1500)
    const logs = a.out.all.filter((l) => l.event === 'log').map((l) => l.line as string)
    assert.deepEqual(logs.filter((l) => /ENETUNREACH|cannot/.test(l)), [], 'no send errors')
  } finally {
    await lan.close()
  }
})

test('with no interface that can carry multicast, the node says so once, and is found once one can', { skip: skip() }, async () => {
  const lan = await createLan(2)
  try {
    const [h1, hb] = lan.hosts
    await lan.run(h1, ['ip', 'link', 'set', 'veth0', 'multicast', 'off'])
    const b = await browse(lan, hb)
    const a = run(lan, h1, 'advertise.ts', ['--name', 'mute', '--id', 'id-mute'])
    const said = await a.out.wait((l) => l.event === 'log' && /cannot work here/.test(l.line), 5000, 'mDNS cannot work')
    assert.match(said.line, /no network interface can carry multicast \(veth0: no multicast\)/)
    await sleep(6000)
    assert.equal(a.out.all.filter((l) => l.event === 'log' && /cannot/.test(l.line)).length, 1, 'said once')
    assert.ok(!b.out.all.some((l) => l.event === 'up'), 'not seen while it cannot send')
    // the link can carry multicast again (a cable plugged in): joined within the rescan, probed, announced
    await lan.run(h1, ['ip', 'link', 'set', 'veth0', 'multicast', 'on'])
    const up = await b.out.wait((l) => l.event === 'up' && /^mute-/.test(l.peer.name), 10_000, 'up once multicast works')
    assert.deepEqual(up.peer.addresses, [h1.address])
    assert.ok(a.out.all.some((l) => l.event === 'log' && /working again on veth0/.test(l.line)))
  } finally {
    await lan.close()
  }
})

test('legacy unicast queries (dig -p 5353) get a unicast answer with the query id and TTLs of at most 10 s', { skip: skip() }, async () => {
  const lan = await createLan(2)
  try {
    const [h1, hq] = lan.hosts
    const a = await advertise(lan, h1, ['--name', 'legacy', '--id', 'id-legacy', '--port', '4011', '--ttl', '120', '--host', 'legacyhost'])
    const dig = (name: string, type: string) => lan.run(hq, ['dig', '-p', '5353', `@${h1.address}`, name, type, '+norecurse', '+time=2', '+tries=2'])
    const srv = await dig(`${a.name}._rrcloud._tcp.local`, 'SRV')
    // dig itself rejects a reply whose id or question does not match its query
    assert.match(srv, /status: NOERROR/)
    const srvLine = new RegExp(`^${a.name}\\._rrcloud\\._tcp\\.local\\.\\s+(\\d+)\\s+IN\\s+SRV\\s+0 0 4011 legacyhost\\.local\\.$`, 'm')
    const m = srvLine.exec(srv)
    assert.ok(m, srv)
    assert.ok(Number(m[1]) <= 10, `TTL ${m[1]}`)
    assert.match(srv, new RegExp(`^legacyhost\\.local\\.\\s+(10|[0-9])\\s+IN\\s+A\\s+${h1.address.replace(/\./g, '\\.')}$`, 'm'), 'the address comes along')
    const ptr = await dig('_rrcloud._tcp.local', 'PTR')
    assert.match(ptr, new RegExp(`^_rrcloud\\._tcp\\.local\\.\\s+([0-9]|10)\\s+IN\\s+PTR\\s+${a.name}\\._rrcloud\\._tcp\\.local\\.$`, 'm'), ptr)
    const txt = await dig(`${a.name}._rrcloud._tcp.local`, 'TXT')
    assert.match(txt, /"id=id-legacy"/)
  } finally {
    await lan.close()
  }
})

test('two hosts both called raspberrypi, each with several addresses, end with two distinct host names (RFC 6762 §8.2)', { skip: skip() }, async () => {
  const lan = await createLan(3)
  try {
    const [h1, h2, hb] = lan.hosts
    const extra = ['10.77.0.102', '10.77.0.103']
    await lan.run(h1, ['ip', 'addr', 'add', `${extra[0]}/24`, 'dev', 'veth0'])
    await lan.run(h2, ['ip', 'addr', 'add', `${extra[1]}/24`, 'dev', 'veth0'])
    const b = await browse(lan, hb)
    // started at the same moment: each hears the other's probe and compares the proposed address sets
    const at = String(Date.now() + 2500)
    const ads = [
      run(lan, h1, 'advertise.ts', ['--name', 'pi-one', '--id', 'id-one', '--host', 'raspberrypi', '--start-at', at]),
      run(lan, h2, 'advertise.ts', ['--name', 'pi-two', '--id', 'id-two', '--host', 'raspberrypi', '--start-at', at]),
    ]
    const ready = await Promise.all(ads.map((a) => a.out.wait((l) => l.event === 'ready', 15_000, 'ready')))
    await sleep(2500)
    const hosts = ads.map((a, i) => (findLast(a.out.all, (l) => l.event === 'ready' || l.event === 'rename') ?? ready[i]).host as string)
    assert.notEqual(hosts[0], hosts[1], 'two distinct host names')
    assert.ok(hosts.includes('raspberrypi.local'), `one keeps the name: ${hosts.join(', ')}`)
    assert.ok(hosts.every((h) => /^raspberrypi(-\d+)?\.local$/.test(h)), hosts.join(', '))
    for (const [i, h] of [h1, h2].entries()) {
      const name = ads[i].out.all.find((l) => l.event === 'ready')!.name as string
      const last = findLast(b.out.all, (l) => l.peer?.name === name)
      assert.ok(last && last.event !== 'down', `${name} is up in the browser`)
      assert.equal(last.peer.host, hosts[i])
      assert.deepEqual([...last.peer.addresses].sort(), [h.address, extra[i]].sort(), `${name} resolves to its own addresses only`)
    }
  } finally {
    await lan.close()
  }
})

const avahiTxt = (s: string): Record<string, string> =>
  Object.fromEntries([...s.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1].split(/=(.*)/s).slice(0, 2)))

const runMounts = (): string[] => readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
  .filter((l) => ['/run', '/var/run', '/run/dbus'].includes(l.split(' ')[4]))

test('avahi sees every node with its TXT, a load update, a dead node and a goodbye', { skip: skip() }, async () => {
  const lan = await createLan(3)
  const hostRun = runMounts()
  try {
    const [h1, h2, hv] = lan.hosts
    const avahi = await startAvahi(lan, hv)
    try {
      const watch = avahi.browse(['-rp', '_rrcloud._tcp'])
      const seen = lines<string[]>(watch, (s) => s.split(';'))
      const a = await advertise(lan, h1, ['--name', 'alpha', '--id', 'id-a', '--port', '4001', '--ttl', '120'])
      const resolved = await seen.wait((f) => f[0] === '=' && f[3] === a.name, 5000, 'avahi resolves alpha')
      assert.equal(resolved[7], h1.address)
      assert.equal(resolved[8], '4001')
      assert.equal(avahiTxt(resolved[9]).id, 'id-a')
      assert.equal(avahiTxt(resolved[9]).load, '0')

      // avahi-browse resolves each service once; its TXT afterwards is read from avahi's cache
      const cached = async (): Promise<Record<string, string>> => {
        const c = avahi.browse(['-rpc', '_rrcloud._tcp'])
        const out = lines<string[]>(c, (s) => s.split(';'))
        const line = await out.wait((f) => f[0] === '=' && f[3] === a.name, 5000, 'cached alpha')
        return avahiTxt(line[9])
      }
      a.child.stdin!.write('load 0.75\n')
      await sleep(800)
      assert.equal((await cached()).load, '0.75', 'the update replaced the TXT in avahi\'s cache')

      const b = await advertise(lan, h2, ['--name', 'beta', '--id', 'id-b', '--port', '4002'])
      const rb = await seen.wait((f) => f[0] === '=' && f[3] === b.name, 5000, 'avahi resolves beta')
      assert.equal(rb[7], h2.address)
      assert.equal(avahiTxt(rb[9]).id, 'id-b')
      const killedAt = Date.now()
      b.child.kill('SIGKILL')
      await seen.wait((f) => f[0] === '-' && f[3] === b.name, 8000, 'avahi drops beta')
      assert.ok(Date.now() - killedAt <= 6000, `avahi dropped the dead node after ${Date.now() - killedAt} ms`)

      const stoppedAt = Date.now()
      a.child.kill('SIGTERM')
      await seen.wait((f) => f[0] === '-' && f[3] === a.name, 3000, 'avahi drops alpha')
      // avahi keeps a record for 1 s after a goodbye (RFC 6762 §10.1)
      assert.ok(Date.now() - stoppedAt < 2000, `goodbye seen after ${Date.now() - stoppedAt} ms`)
      assert.deepEqual(runMounts(), hostRun, 'the private /run of avahi never shows on the host')
    } finally {
      await avahi.close()
    }
  } finally {
    await lan.close()
  }
})
