// Printing across a LAN of network namespaces: each of two nodes has a (simulated Marlin) printer
// of its own; a print goes to the node that has the printer named, by name or by port path.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { netnsSkip } from '../helpers/netns.js'
import { startSimPty, type SimPty } from '../helpers/pty.js'
import { printedCommands } from '../helpers/sliced.js'
import { createNodeLan, nodeOfTask, printedId, tasksOn, until, type LanNode, type NodeLan } from '../helpers/lan.js'

const skip = netnsSkip('multi-host tests run in network namespaces')

/** A small print: home, then a square spiral of moves, each line distinct. */
function gcode (dir: string, tag: string): { file: string, commands: string[] } {
  const commands = ['G28', 'G90', 'G1 Z0.2 F1200']
  for (let i = 1; i <= 150; i++) commands.push(`G1 X${(i % 50) + 10} Y${Math.floor(i / 3) + 10} E${(i / 10).toFixed(2)} F1500`)
  commands.push(`M117 ${tag} done`)
  const file = join(dir, `${tag}.gcode`)
  writeFileSync(file, `; ${tag}\n` + commands.join('\n') + '\n')
  return { file, commands }
}

const printed = (sim: SimPty): string[] => printedCommands(sim.log())

async function connected (nl: NodeLan, n: LanNode): Promise<void> {
  await until(async () => (await nl.http(`${n.url}/api/v1/meta`)).body.printers?.[0]?.state === 'idle', 15_000, `${n.name}'s printer to connect`)
}

test('a print goes to the node that has the printer, by name or by port; an unknown printer lists the LAN\'s', { skip: skip() }, async () => {
  const sims = await Promise.all([startSimPty(), startSimPty()])
  const nl = await createNodeLan(2, 1)
  try {
    const [alpha, beta] = await Promise.all([
      nl.startNode(nl.hosts[0], { name: 'alpha', slots: 2, printers: [`ender=${sims[0].path}`] }),
      nl.startNode(nl.hosts[1], { name: 'beta', slots: 2, printers: [`mk3=${sims[1].path}`] }),
    ])
    await Promise.all([connected(nl, alpha), connected(nl, beta)])
    // the LAN knows both printers before a client asks
    await until(async () => {
      const peers = (await nl.http(`${alpha.url}/api/v1/peers`)).body as any[]
      return peers.find((p) => p.record.id === beta.id)?.record.printers?.[0]?.name === 'mk3'
    }, 5000, 'beta\'s printer in its TXT')

    const one = gcode(nl.dir, 'one')
    const id = printedId(await nl.rrcloud(['printrun', '--printer', 'mk3', one.file]))
    assert.equal((await nodeOfTask(nl, id))?.name, 'beta')
    await until(async () => (await tasksOn(nl, beta, 'complete')).includes(id), 30_000, 'the print to end')
    assert.deepEqual(printed(sims[1]), one.commands)
    assert.deepEqual(printed(sims[0]), [], 'nothing reached the other printer')

    // the seed's way: printrun.cloud PORT FILE, synchronous
    const two = gcode(nl.dir, 'two')
    const r = await nl.rrcloud([sims[0].path, two.file], { bin: 'printrun.cloud', timeoutMs: 60_000 })
    assert.equal(r.code, 0, `printrun.cloud: ${r.stderr}`)
    assert.equal((await tasksOn(nl, alpha, 'complete')).length, 1)
    assert.deepEqual(printed(sims[0]), two.commands)
    assert.equal((await tasksOn(nl, beta)).length, 1, 'beta printed only the first')

    const bad = await nl.rrcloud(['printrun', '--printer', 'prusa-xl', one.file])
    assert.notEqual(bad.code, 0)
    assert.match(bad.stderr, /prusa-xl/)
    assert.match(bad.stderr, /\bmk3\b/, `lists the LAN's printers: ${bad.stderr}`)
    assert.match(bad.stderr, /\bender\b/, `lists the LAN's printers: ${bad.stderr}`)
    const badPort = await nl.rrcloud(['/dev/ttyUSB9', one.file], { bin: 'printrun.cloud' })
    assert.notEqual(badPort.code, 0)
    assert.match(badPort.stderr, /ttyUSB9/)
    assert.match(badPort.stderr, /\bmk3\b/)
    assert.equal((await tasksOn(nl, alpha)).length + (await tasksOn(nl, beta)).length, 2, 'no task for an unknown printer')
  } finally {
    await nl.close()
    await Promise.all(sims.map((s) => s.stop()))
  }
})
