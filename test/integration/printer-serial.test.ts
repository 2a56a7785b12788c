// The printer component against the simulated Marlin on a real pty (socat), with real sliced G-code.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createPrinter, listSerialPorts, PrinterError, type Printer, type PrinterConfig, type PrintProgress } from '../../src/executors/printer/printer.js'
import { startSimPty, type SimPty } from '../helpers/pty.js'
import { compareDelivery, expectedCommands, printedCommands, sliceCube } from '../helpers/sliced.js'

const SAFE = ['M104 S0', 'M140 S0', 'M107', 'M84']
let dir: string
let cube: string
let expected: string[]

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'rrcloud-printer-'))
  cube = sliceCube(dir)
  expected = expectedCommands(cube)
  // the comparisons drop the host's own M105/M110; the file must not hide any of its own there
  assert.ok(expected.length > 1000, `a real sliced file (${expected.length} commands)`)
  assert.ok(!expected.some((c) => /^M10[5]\b|^M110\b/.test(c)))
})
after(() => rmSync(dir, { recursive: true, force: true }))

async function withPrinter (simArgs: string[], config: Partial<PrinterConfig>,
  fn: (printer: Printer, sim: SimPty) => Promise<void>): Promise<void> {
  const sim = await startSimPty(simArgs)
  const printer = createPrinter({
    name: 'sim',
    path: sim.path,
    connectTimeoutMs: 3000,
    probeIntervalMs: 100,
    settleMs: 30,
    temperatureIntervalMs: 200,
    ...config,
  })
  try {
    await fn(printer, sim)
  } finally {
    await printer.close()
    await sim.stop()
  }
}

function isPrinterError (code: string, message?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof PrinterError, `a PrinterError, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    if (message) assert.match(err.message, message)
    return true
  }
}

const until = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

test('listing serial ports never rejects, even where serialport cannot list (no udev)', async () => {
  const ports = await listSerialPorts()
  assert.ok(Array.isArray(ports))
  for (const p of ports) assert.equal(typeof p.path, 'string')
})

describe('printing to a simulated Marlin over a pty', () => {
  test('every line of a sliced cube reaches the firmware once and in order, with progress and temperatures', async () => {
    await withPrinter([], { temperatureIntervalMs: 50 }, async (printer, sim) => {
      await printer.connect()
      assert.equal(printer.state, 'idle')
      const reports: PrintProgress[] = []
      const result = await printer.print(cube, { onProgress: (p) => reports.push(p), progressIntervalMs: 0 })
      assert.equal(result.status, 'complete')
      assert.deepEqual(compareDelivery(expected, printedCommands(sim.log())),
        { expected: expected.length, received: expected.length, missing: 0, doubled: 0, inOrder: true })
      assert.equal(result.linesSent, expected.length)
      assert.equal(result.bytesSent, result.totalBytes)
      assert.equal(result.percent, 100)
      const percents = reports.map((p) => p.percent)
      assert.deepEqual(percents, [...percents].sort((a, b) => a - b), 'progress only goes forward')
      assert.equal(reports.at(-1)!.linesSent, expected.length)
      assert.ok(reports.length > expected.length / 2)
      // temperature polls are numbered lines in the same sequence, and their answers are parsed
      assert.ok(result.temperaturePolls >= 1, `polled ${result.temperaturePolls} times`)
      const job = sim.log().slice(sim.log().lastIndexOf('M110 N0'))
      assert.equal(job.filter((c) => c === 'M105').length, result.temperaturePolls, 'no M105 besides the polls')
      assert.equal(printer.temperatures.T.actual, 200) // the file heats to 200 (M109), the simulator never cools
      assert.equal(printer.state, 'idle')
    })
  })

  test('corrupted lines (resends) and busy firmware lose or double nothing', async () => {
    await withPrinter(['--corrupt', '0.03', '--busy', '0.01', '--busy-ms', '5', '--seed', '7'], {}, async (printer, sim) => {
      const result = await printer.print(cube)
      assert.equal(result.status, 'complete')
      assert.deepEqual(compareDelivery(expected, printedCommands(sim.log())),
        { expected: expected.length, received: expected.length, missing: 0, doubled: 0, inOrder: true })
      await printer.close()
      await until(() => sim.stats() !== undefined)
      const stats = sim.stats()!
      assert.ok(stats.errors > 20, `the simulator rejected ${stats.errors} lines`)
      // one resend per rejected line; a rejected M110 while connecting is not the job's
      assert.ok(stats.errors - result.resends >= 0 && stats.errors - result.resends <= 1, `${result.resends} resends, ${stats.errors} errors`)
    })
  })

  test('lost oks are recovered by an M105 nudge', async () => {
    await withPrinter(['--drop-ok', '0.005', '--seed', '3'], { idleTimeoutMs: 100, temperatureIntervalMs: 0 }, async (printer, sim) => {
      const result = await printer.print(cube)
      assert.equal(result.status, 'complete')
      assert.deepEqual(compareDelivery(expected, printedCommands(sim.log())).doubled, 0)
      assert.ok(compareDelivery(expected, printedCommands(sim.log())).inOrder)
      const job = sim.log().slice(sim.log().lastIndexOf('M110 N0'))
      assert.ok(job.filter((c) => c === 'M105').length >= 3, 'oks were lost and nudged (no polls in this test)')
    })
  })

  test('pause stops sending and resume continues where it stopped', async () => {
    await withPrinter(['--delay-ms', '1'], { temperatureIntervalMs: 50 }, async (printer, sim) => {
      let pausedAt: Promise<void> | undefined
      const job = printer.print(cube, {
        progressIntervalMs: 0,
        onProgress: (p) => { if (p.linesSent >= 200 && !pausedAt) pausedAt = printer.pause() },
      })
      await until(() => pausedAt !== undefined)
      await pausedAt
      assert.equal(printer.state, 'paused')
      const before = printedCommands(sim.log()).length
      const polls = sim.log().length
      await new Promise((resolve) => setTimeout(resolve, 400))
      assert.equal(printedCommands(sim.log()).length, before, 'nothing sent while paused')
      assert.ok(sim.log().length > polls, 'temperatures are still polled while paused')
      assert.ok(before >= 200 && before < expected.length)
      assert.equal(printer.progress!.linesSent, before)
      printer.resume()
      assert.equal(printer.state, 'printing')
      const result = await job
      assert.equal(result.status, 'complete')
      assert.deepEqual(compareDelivery(expected, printedCommands(sim.log())),
        { expected: expected.length, received: expected.length, missing: 0, doubled: 0, inOrder: true })
    })
  })

  test('cancel stops the job and makes the printer safe', async () => {
    await withPrinter(['--delay-ms', '1'], {}, async (printer, sim) => {
      const job = printer.print(cube, {
        progressIntervalMs: 0,
        onProgress: (p) => { if (p.linesSent === 300) void printer.cancel() },
      })
      const result = await job
      assert.equal(result.status, 'cancelled')
      const log = printedCommands(sim.log())
      assert.deepEqual(log.slice(-4), SAFE, 'heaters, fan and motors off last')
      const sent = log.slice(0, -4)
      assert.ok(sent.length >= 300 && sent.length < 310, `stopped right away (${sent.length} lines)`)
      assert.deepEqual(sent, expected.slice(0, sent.length), 'what was sent is the start of the file')
      assert.equal(printer.state, 'idle')
    })
  })

  test('cancel during a heat-up wait interrupts it with M108', async () => {
    const file = join(dir, 'heat.gcode')
    writeFileSync(file, 'M140 S60\nM104 S200\nM109 S200 ; wait\nG28\nG1 X10 Y10\n')
    await withPrinter(['--heat-ms', '30000'], {}, async (printer, sim) => {
      const job = printer.print(file)
      await until(() => sim.log().includes('M109 S200'))
      const t0 = Date.now()
      await printer.cancel()
      const result = await job
      assert.ok(Date.now() - t0 < 3000, `cancelled in ${Date.now() - t0} ms`)
      assert.equal(result.status, 'cancelled')
      assert.deepEqual(printedCommands(sim.log()), ['M140 S60', 'M104 S200', 'M109 S200', 'M108', ...SAFE])
    })
  })

  test('a disconnect mid-print fails the job with a clear reason', async () => {
    await withPrinter(['--hangup-after', '500'], {}, async (printer, sim) => {
      await assert.rejects(printer.print(cube), isPrinterError('disconnected', /printer sim disconnected after \d+ lines of cube-x1\.gcode/))
      assert.equal(printer.state, 'disconnected')
      assert.match(printer.lastError!, /disconnected/)
      const log = printedCommands(sim.log())
      assert.deepEqual(log, expected.slice(0, log.length))
    })
  })

  for (const [kind, message] of [['error', /firmware error: Printer halted\. kill\(\) called!/], ['bang', /firmware halted/]] as const) {
    test(`a firmware failure (${kind}) fails the job`, async () => {
      await withPrinter(['--fail-after', '300', '--fail-with', kind], {}, async (printer) => {
        const t0 = Date.now()
        await assert.rejects(printer.print(cube), isPrinterError('firmware-error', message))
        assert.ok(Date.now() - t0 < 3000)
        assert.equal(printer.state, 'idle')
        assert.match(printer.lastError!, message)
      })
    })
  }

  test('a printer that reboots mid-print fails the job', async () => {
    await withPrinter(['--restart-after', '200'], { idleTimeoutMs: 5000 }, async (printer) => {
      await assert.rejects(printer.print(cube), isPrinterError('firmware-error', /the printer restarted during the job/))
    })
  })

  test('a second print while one runs is refused', async () => {
    await withPrinter(['--delay-ms', '1'], {}, async (printer, sim) => {
      const first = printer.print(cube)
      await until(() => printer.state === 'printing')
      await assert.rejects(printer.print(cube), isPrinterError('busy', /busy printing cube-x1\.gcode/))
      assert.equal((await first).status, 'complete')
      assert.ok(compareDelivery(expected, printedCommands(sim.log())).inOrder)
    })
  })

  test('connect times out when nothing answers', async () => {
    await withPrinter(['--silent'], { connectTimeoutMs: 500 }, async (printer) => {
      const t0 = Date.now()
      await assert.rejects(printer.connect(), isPrinterError('connect-timeout', /no answer from a printer on .* within 0.5 s/))
      assert.ok(Date.now() - t0 >= 450 && Date.now() - t0 < 2000)
      assert.equal(printer.state, 'disconnected')
    })
  })

  test('close() during a print cancels it safely; closing twice is harmless', async () => {
    await withPrinter(['--delay-ms', '1'], {}, async (printer, sim) => {
      const job = printer.print(cube)
      await until(() => printedCommands(sim.log()).length > 100)
      await Promise.all([printer.close(), printer.close()])
      assert.equal((await job).status, 'cancelled')
      assert.deepEqual(printedCommands(sim.log()).slice(-4), SAFE)
      assert.equal(printer.state, 'closed')
      await printer.close()
      await assert.rejects(printer.print(cube), isPrinterError('closed'))
    })
  })

  test('a missing file is refused without touching the printer', async () => {
    await withPrinter([], {}, async (printer, sim) => {
      await assert.rejects(printer.print(join(dir, 'nope.gcode')), isPrinterError('file', /cannot read nope\.gcode/))
      assert.equal(printer.state, 'disconnected')
      assert.deepEqual(sim.log(), [])
    })
  })
})
