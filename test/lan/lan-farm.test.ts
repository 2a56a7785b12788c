// A print farm across a LAN of network namespaces: three nodes, each with a simulated Marlin in
// group mk3. Two clients queue jobs at the same moment, each on its own node, so that two queues
// race for the same printers: every copy prints exactly once, one at a time on each printer, and
// no printer starts on a bed that was not cleared. A printer that fails mid-job gets no new job.
// Slicers' "Browse" (python3-zeroconf) finds every printer and group as `_octoprint._tcp`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { netnsSkip } from '../helpers/netns.js'
import { startSimPty, type SimPty } from '../helpers/pty.js'
import { printedCommands } from '../helpers/sliced.js'
import { createNodeLan, until, type LanNode, type NodeLan } from '../helpers/lan.js'

const skip = netnsSkip('multi-host tests run in network namespaces')

/** A short print: moves, each line distinct, and a last line that names it. */
function gcode (dir: string, tag: string, middle: string[] = []): { file: string, commands: string[] } {
  const moves = Array.from({ length: 40 }, (_, i) => `G1 X${(i % 40) + 10} Y${Math.floor(i / 4) + 10} F3000`)
  const commands = [`M117 ${tag} start`, 'G90', 'G1 Z0.2 F1200', ...moves.slice(0, 20), ...middle, ...moves.slice(20), `M117 ${tag} done`]
  const file = join(dir, `${tag}.gcode`)
  writeFileSync(file, `; ${tag}\n${commands.join('\n')}\n`)
  return { file, commands }
}

/**
 * The prints a simulated printer received, in order, by their tags: its log must be whole prints
 * one after the other (two prints at once would interleave their lines). A print that failed
 * ends early and is followed by the safety commands (`tag!`); one still printing is `tag…`.
 */
function printsOn (sim: SimPty, files: Record<string, string[]>): string[] {
  const log = printedCommands(sim.log())
  const tags: string[] = []
  for (let i = 0; i < log.length;) {
    const tag = Object.keys(files).find((t) => files[t][0] === log[i])
    if (!tag) throw new Error(`line ${i} of the printer's log starts no known print: ${log.slice(i, i + 5).join(' | ')}`)
    const want = files[tag]
    let k = 0
    while (k < want.length && log[i + k] === want[k]) k++
    if (k === want.length) { tags.push(tag); i += k; continue }
    // still printing
    if (i + k === log.length) { tags.push(`${tag}…`); break }
    // cut short: only the safety commands may follow
    const safe = ['M104 S0', 'M140 S0', 'M107', 'M84']
    assert.deepEqual(log.slice(i + k, i + k + 4), safe, `print ${tag} on ${sim.path} was interrupted by something else at line ${k}`)
    tags.push(`${tag}!`)
    i += k + 4
  }
  return tags
}

const BROWSE = `
import json, time
from zeroconf import Zeroconf, ServiceBrowser, ServiceListener
names = set()
class L(ServiceListener):
    def add_service(self, zc, t, name): names.add(name)
    def update_service(self, zc, t, name): names.add(name)
    def remove_service(self, zc, t, name): pass
zc = Zeroconf()
ServiceBrowser(zc, "_octoprint._tcp.local.", L())
time.sleep(2.5)
out = []
for name in sorted(names):
    info = zc.get_service_info("_octoprint._tcp.local.", name, timeout=3000)
    if info:
        out.append({"name": name, "port": info.port, "addresses": info.parsed_addresses(),
                    "txt": {k.decode(): (v.decode() if v is not None else None) for k, v in info.properties.items()}})
zc.close()
print(json.dumps(out))
`

async function printers (nl: NodeLan): Promise<any[]> {
  const r = await nl.rrcloud(['printers', '--json'])
  assert.equal(r.code, 0, r.stderr)
  return JSON.parse(r.stdout)
}

test('three nodes, two queues racing, ten copies: each printed once, one at a time, after the bed was cleared; an error stops a printer', { skip: skip() }, async () => {
  const t0 = Date.now()
  // the third printer takes 2 s over G29 (bed probing), long enough to fail it in the middle
  const sims = await Promise.all([startSimPty(['--delay-ms', '2']), startSimPty(['--delay-ms', '2']), startSimPty(['--delay-ms', '2', '--long-ms', '2000'])])
  const nl = await createNodeLan(3, 1)
  try {
    const names = ['alpha', 'beta', 'gamma']
    const nodes = await Promise.all(names.map((name, i) => nl.startNode(nl.hosts[i], { name, slots: 1, testServices: false, printers: [`mk3-${i + 1}=${sims[i].path},group=mk3`] })))
    const [alpha, , gamma] = nodes
    // every node sees the other two with their printers idle, in group mk3
    await until(async () => {
      const views = await Promise.all(nodes.map((n) => nl.http(`${n.url}/api/v1/peers`)))
      return views.every((v) => Array.isArray(v.body) && v.body.filter((p: any) => p.record.printers?.[0]?.state === 'idle' && p.record.printers[0].groups?.includes('mk3')).length === 2)
    }, 20_000, 'the nodes to see each other\'s printers')

    // slicers browsing for OctoPrint find each printer and the group on each node
    const browsed = JSON.parse(await nl.lan.run(nl.client, ['/usr/bin/python3', '-c', BROWSE])) as Array<{ name: string, port: number, addresses: string[], txt: Record<string, string> }>
    const byName = new Map(browsed.map((s) => [s.name, s]))
    for (const [i, n] of names.entries()) {
      const p = byName.get(`mk3-${i + 1} on ${n}._octoprint._tcp.local.`)
      assert.ok(p, `printer mk3-${i + 1}: found ${[...byName.keys()].join(', ')}`)
      assert.deepEqual([p.port, p.addresses, p.txt.path, p.txt.version, p.txt.api, p.txt.model], [4468, [nodes[i].host.address], `/octoprint/printer/mk3-${i + 1}`, '1.5.0', '0.1', 'mk3'])
      assert.equal(byName.get(`mk3 group on ${n}._octoprint._tcp.local.`)?.txt.path, '/octoprint/group/mk3')
    }
    assert.equal(browsed.length, 6)

    assert.deepEqual((await printers(nl)).map((p) => [p.name, p.node, p.state, p.groups]),
      [['mk3-1', 'alpha', 'idle', ['mk3']], ['mk3-2', 'beta', 'idle', ['mk3']], ['mk3-3', 'gamma', 'idle', ['mk3']]])

    // two clients at once, each on a node of its own: two queues, 6 + 4 copies
    const a = gcode(nl.dir, 'a')
    const b = gcode(nl.dir, 'b')
    const [ra, rb] = await Promise.all([
      nl.rrcloud(['print', '--group', 'mk3', '--copies', '6', a.file], { host: alpha.host }),
      nl.rrcloud(['print', '--group', 'mk3', '--copies', '4', b.file], { host: gamma.host }),
    ])
    assert.equal(ra.code, 0, ra.stderr)
    assert.equal(rb.code, 0, rb.stderr)
    assert.match(ra.stdout, /^node: alpha$/m, 'the node on the client\'s machine keeps the job')
    assert.match(rb.stdout, /^node: gamma$/m)
    const files = { a: a.commands, b: b.commands }
    const total = () => sims.reduce((n, s) => n + printsOn(s, files).filter((t) => t in files).length, 0)
    const allFinished = async () => (await printers(nl)).every((p) => p.state === 'finished')

    for (let round = 1; total() < 10; round++) {
      const expected = Math.min(10, round * 3)
      await until(async () => total() === expected && (expected === 10 || await allFinished()), 30_000, `round ${round}: ${expected} prints`, 200)
      if (round === 1) {
        // the beds hold the prints: nothing starts until someone clears them
        await new Promise((resolve) => setTimeout(resolve, 1500))
        assert.equal(total(), 3, 'no print on a bed that was not cleared')
        const queue = JSON.parse((await nl.rrcloud(['queue', '--json'])).stdout) as any[]
        assert.equal(queue.reduce((n, j) => n + j.counts.queued, 0), 7)
        assert.equal(queue.reduce((n, j) => n + j.counts.complete, 0), 3)
      }
      if (total() < 10) {
        const cleared = await Promise.all(names.map((_, i) => nl.rrcloud(['clear', `mk3-${i + 1}`])))
        for (const c of cleared) assert.equal(c.code, 0, c.stderr)
      }
    }
    const printed = sims.map((s) => printsOn(s, files).filter((t) => t in files))
    const all = printed.flat()
    assert.deepEqual([all.filter((t) => t === 'a').length, all.filter((t) => t === 'b').length], [6, 4], `prints per printer: ${JSON.stringify(printed)}`)
    assert.ok(printed.every((p) => p.length >= 3), `each printer took its turn: ${JSON.stringify(printed)}`)
    // the queues learn how the last prints ended within a second or two
    const queue = await until(async () => {
      const q = JSON.parse((await nl.rrcloud(['queue', '--json'])).stdout) as any[]
      return q.every((j) => j.counts.complete === j.copies.length) && q
    }, 10_000, 'the queues to see every copy complete')
    assert.deepEqual(queue.map((j) => [j.node, j.counts.complete, j.counts.failed]).sort(), [['alpha', 6, 0], ['gamma', 4, 0]])
    const copies = queue.flatMap((j) => j.copies)
    assert.equal(new Set(copies.map((c: any) => `${c.node}/${c.task}`)).size, 10, 'ten tasks, one per copy')

    // a printer that fails in the middle of its job is in error and gets no new job
    await Promise.all(names.map((_, i) => nl.rrcloud(['clear', `mk3-${i + 1}`])))
    const c = gcode(nl.dir, 'c', ['G29'])
    const rc = await nl.rrcloud(['print', '--printer', 'mk3-3', c.file])
    assert.equal(rc.code, 0, rc.stderr)
    await until(() => sims[2].log().includes('G29'), 15_000, 'mk3-3 to probe its bed')
    sims[2].say('Error:Probing failed')
    await until(async () => (await printers(nl)).find((p) => p.name === 'mk3-3')?.state === 'error', 10_000, 'mk3-3 in error')
    const sent = (sim: SimPty) => printedCommands(sim.log()).length
    const sentTo3 = sent(sims[2])
    const d = gcode(nl.dir, 'd')
    assert.equal((await nl.rrcloud(['print', '--group', 'mk3', '--copies', '3', d.file])).code, 0)
    const withD = { ...files, c: c.commands, d: d.commands }
    const dPrints = () => sims.reduce((n, s) => n + printsOn(s, withD).filter((t) => t === 'd').length, 0)
    await until(() => dPrints() === 2, 20_000, 'two copies of d on the other printers')
    await Promise.all([nl.rrcloud(['clear', 'mk3-1']), nl.rrcloud(['clear', 'mk3-2'])])
    await until(() => dPrints() === 3, 20_000, 'the third copy of d')
    assert.equal(sent(sims[2]), sentTo3, 'nothing more was sent to the printer in error')
    assert.deepEqual(printsOn(sims[2], withD).slice(-1), ['c!'], 'its failed print was its last')
    const jobs = JSON.parse((await nl.rrcloud(['queue', '--json'])).stdout) as any[]
    const jc = jobs.find((j) => j.name === 'c.gcode')
    assert.deepEqual([jc.counts.failed, jc.counts.queued], [1, 0], 'the failed copy is not printed again')
    assert.match(jc.copies[0].error, /Probing failed/)
    const p3 = (await printers(nl)).find((p) => p.name === 'mk3-3')
    assert.equal(p3.connection, 'idle', 'the firmware is fine; the farm waits for someone to look at the bed')
    console.log(`# lan-farm: ${Math.round((Date.now() - t0) / 1000)} s`)
  } finally {
    await nl.close()
    await Promise.all(sims.map((s) => s.stop()))
  }
})

test('two nodes of one name with printers of one name: their _octoprint._tcp services take distinct names', { skip: skip() }, async () => {
  const nl = await createNodeLan(2, 1)
  try {
    // no printer behind these ports: the services are advertised all the same
    await Promise.all(nl.hosts.slice(0, 2).map((h, i) => nl.startNode(h, { name: 'twin', testServices: false, hostname: `twin${i}`, printers: [`mk3a=${join(nl.dir, `none${i}`)},group=mk3`] })))
    const browsed = JSON.parse(await nl.lan.run(nl.client, ['/usr/bin/python3', '-c', BROWSE])) as Array<{ name: string, addresses: string[], txt: Record<string, string> }>
    assert.deepEqual(browsed.map((s) => s.name).sort(), [
      'mk3 group on twin-2._octoprint._tcp.local.', 'mk3 group on twin._octoprint._tcp.local.',
      'mk3a on twin-2._octoprint._tcp.local.', 'mk3a on twin._octoprint._tcp.local.',
    ])
    // each name leads to its own node
    const addressOf = (name: string) => browsed.find((s) => s.name === `${name}._octoprint._tcp.local.`)!.addresses[0]
    assert.notEqual(addressOf('mk3a on twin'), addressOf('mk3a on twin-2'))
    assert.equal(addressOf('mk3a on twin-2'), addressOf('mk3 group on twin-2'))
  } finally {
    await nl.close()
  }
})
