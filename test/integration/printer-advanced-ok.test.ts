// Marlin's ADVANCED_OK (`ok N<line> P<planner> B<free>`) against the simulated Marlin on a pty:
// several lines in flight, never more than the firmware has room for, resends, doubled and lost
// oks, and one line at a time when the firmware does not say how much room it has.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createPrinter, type Printer, type PrinterConfig } from '../../src/executors/printer/printer.js'
import { startSimPty, type SimPty, type SimStats } from '../helpers/pty.js'
import { compareDelivery, expectedCommands, printedCommands, sliceCube } from '../helpers/sliced.js'

const SAFE = ['M104 S0', 'M140 S0', 'M107', 'M84']
let dir: string
let cube: string
let expected: string[]

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'rrcloud-advanced-ok-'))
  cube = sliceCube(dir)
  expected = expectedCommands(cube)
  assert.ok(expected.length > 1000, `a real sliced file (${expected.length} commands)`)
})
after(() => rmSync(dir, { recursive: true, force: true }))

const until = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** Prints with a fresh simulator; returns what it says about itself once the port is closed. */
async function withPrinter (simArgs: string[], config: Partial<PrinterConfig>,
  fn: (printer: Printer, sim: SimPty) => Promise<void>): Promise<SimStats> {
  const sim = await startSimPty(simArgs)
  const printer = createPrinter({ name: 'sim', path: sim.path, connectTimeoutMs: 3000, probeIntervalMs: 100, settleMs: 30, ...config })
  try {
    await fn(printer, sim)
    await printer.close()
    await until(() => sim.stats() !== undefined)
    return sim.stats()!
  } finally {
    await printer.close()
    await sim.stop()
  }
}

const exact = () => ({ expected: expected.length, received: expected.length, missing: 0, doubled: 0, inOrder: true })

describe('ADVANCED_OK', () => {
  test('several lines in flight, never more than the firmware has room for, on a 250000 baud wire', async () => {
    const stats = await withPrinter(['--advanced-ok', '--baud', '250000'], { temperatureIntervalMs: 300 }, async (printer, sim) => {
      const result = await printer.print(cube)
      assert.equal(result.status, 'complete')
      assert.deepEqual(compareDelivery(expected, printedCommands(sim.log())), exact())
      assert.ok(result.temperaturePolls >= 1, 'temperature polls (their ok has no N) go with the rest')
      assert.equal(printer.temperatures.T.actual, 200)
    })
    assert.equal(stats.bufsize, 4)
    assert.ok(stats.maxHeld > 1, `more than one line in flight (at most ${stats.maxHeld} held)`)
    assert.ok(stats.maxHeld <= stats.bufsize, `never more than the command queue holds (${stats.maxHeld} held)`)
  })

  test('ahead=1 (a noisy link): one line in flight even when the firmware has room for more', async () => {
    const stats = await withPrinter(['--advanced-ok', '--bufsize', '3', '--delay-ms', '1'], { temperatureIntervalMs: 0, ahead: 1 }, async (printer, sim) => {
      assert.equal((await printer.print(cube)).status, 'complete')
      assert.deepEqual(compareDelivery(expected, printedCommands(sim.log())), exact())
    })
    assert.equal(stats.maxHeld, 1)
  })

  test('a firmware that runs slowly fills its queue: B is obeyed', async () => {
    const stats = await withPrinter(['--advanced-ok', '--bufsize', '3', '--delay-ms', '1'], { temperatureIntervalMs: 0 }, async (printer, sim) => {
      assert.equal((await printer.print(cube)).status, 'complete')
      assert.deepEqual(compareDelivery(expected, printedCommands(sim.log())), exact())
    })
    assert.ok(stats.maxHeld > 1 && stats.maxHeld <= 3, `${stats.maxHeld} held with BUFSIZE 3`)
  })

  test('resends with several lines in flight: from the requested line, nothing lost, nothing doubled', async () => {
    const stats = await withPrinter(['--advanced-ok', '--corrupt', '0.03', '--busy', '0.01', '--busy-ms', '5', '--seed', '7'], {}, async (printer, sim) => {
      const result = await printer.print(cube)
      assert.equal(result.status, 'complete')
      assert.deepEqual(compareDelivery(expected, printedCommands(sim.log())), exact())
      assert.ok(result.resends > 20, `${result.resends} resend requests`)
    })
    assert.ok(stats.errors > 20, `the simulator rejected ${stats.errors} lines`)
    assert.ok(stats.maxHeld > 1 && stats.maxHeld <= stats.bufsize, `${stats.maxHeld} held`)
  })

  test('resends on a 115200 baud wire, where lines behind a rejected one are still arriving', async () => {
    const stats = await withPrinter(['--advanced-ok', '--baud', '115200', '--corrupt', '0.02', '--seed', '11'], { temperatureIntervalMs: 0 }, async (printer, sim) => {
      assert.equal((await printer.print(cube)).status, 'complete')
      assert.deepEqual(compareDelivery(expected, printedCommands(sim.log())), exact())
    })
    assert.ok(stats.errors > 10, `${stats.errors} rejected`)
    assert.ok(stats.maxHeld > 1 && stats.maxHeld <= stats.bufsize, `${stats.maxHeld} held`)
  })

  test('a doubled ok is recognised by its N: the host does not send beyond the room the firmware has', async () => {
    // BUFSIZE 2: B is at most 1, so one line at a time; a doubled ok taken for the next line's would send one more
    const stats = await withPrinter(['--advanced-ok', '--bufsize', '2', '--dup-ok', '0.05', '--delay-ms', '1', '--seed', '4'], { temperatureIntervalMs: 0 }, async (printer, sim) => {
      assert.equal((await printer.print(cube)).status, 'complete')
      assert.deepEqual(compareDelivery(expected, printedCommands(sim.log())), exact())
    })
    assert.equal(stats.maxHeld, 1)
  })

  test('a lost ok is covered by the next one, the last one by a numbered nudge', async () => {
    await withPrinter(['--advanced-ok', '--drop-ok', '0.01', '--seed', '3'], { temperatureIntervalMs: 0, nudgeMs: 300 }, async (printer, sim) => {
      const t0 = Date.now()
      assert.equal((await printer.print(cube)).status, 'complete')
      assert.deepEqual(compareDelivery(expected, printedCommands(sim.log())), exact())
      assert.ok(Date.now() - t0 < 15000, `${Date.now() - t0} ms`)
      const rx = sim.received()
      assert.deepEqual(rx.slice(rx.findLastIndex((l) => l.startsWith('N0 M110'))).filter((l) => !l.startsWith('N')), [], 'no unnumbered nudge')
    })
    // a poll waits for its own ok: when that is lost nothing comes after it, and the line goes again
    const moves = Array.from({ length: 30 }, (_, i) => `G1 X${i + 1}`)
    const small = join(dir, 'small.gcode')
    writeFileSync(small, moves.join('\n') + '\n')
    await withPrinter(['--advanced-ok', '--drop-ok', '0.3', '--delay-ms', '2', '--seed', '1'], { temperatureIntervalMs: 1, nudgeMs: 100 }, async (printer, sim) => {
      assert.equal((await printer.print(small)).status, 'complete')
      assert.deepEqual(printedCommands(sim.log()), moves)
      const job = sim.received().slice(sim.received().findLastIndex((l) => l.startsWith('N0 M110')))
      assert.ok(job.length > new Set(job).size, 'a numbered line went twice (the nudge)')
      assert.deepEqual(job.filter((l) => !l.startsWith('N')), [], 'no unnumbered nudge')
    })
  })

  test('without ADVANCED_OK one line is in flight, though the firmware has a queue', async () => {
    const stats = await withPrinter(['--bufsize', '4', '--corrupt', '0.01', '--seed', '2'], {}, async (printer, sim) => {
      assert.equal((await printer.print(cube)).status, 'complete')
      assert.deepEqual(compareDelivery(expected, printedCommands(sim.log())), exact())
    })
    assert.equal(stats.maxHeld, 1)
  })

  test('cancel with lines in flight and resends: what was sent is the start of the file, then the safety commands', async () => {
    await withPrinter(['--advanced-ok', '--corrupt', '0.05', '--delay-ms', '1', '--seed', '9'], {}, async (printer, sim) => {
      const result = await printer.print(cube, {
        progressIntervalMs: 0,
        onProgress: (p) => { if (p.linesSent === 300) void printer.cancel() },
      })
      assert.equal(result.status, 'cancelled')
      const log = printedCommands(sim.log())
      assert.deepEqual(log.slice(-4), SAFE)
      const sent = log.slice(0, -4)
      assert.ok(sent.length >= 296 && sent.length < 310, `${sent.length} lines`)
      assert.deepEqual(sent, expected.slice(0, sent.length))
      assert.equal(printer.state, 'idle')
    })
  })

  test('pause waits for every line in flight (M400 last), resume goes on without a gap or a double', async () => {
    await withPrinter(['--advanced-ok', '--corrupt', '0.02', '--delay-ms', '1', '--seed', '5'], {}, async (printer, sim) => {
      let paused: Promise<void> | undefined
      const job = printer.print(cube, { progressIntervalMs: 0, onProgress: (p) => { if (p.linesSent >= 200) paused ??= printer.pause() } })
      await until(() => paused !== undefined)
      await paused
      assert.equal(printedCommands(sim.log()).at(-1), 'M400')
      printer.resume()
      assert.equal((await job).status, 'complete')
      assert.deepEqual(compareDelivery(expected, printedCommands(sim.log()).filter((c) => c !== 'M400')), exact())
    })
  })
})
