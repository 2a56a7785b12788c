// The printer component against the simulated Marlin on a real pty (socat), with real sliced G-code.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createPrinter, listSerialPorts, PrinterError, type Printer, type PrinterConfig, type PrintProgress } from '../../src/executors/printer/printer.js'
import { startSimPty, type SimPty } from '../helpers/pty.js'
import { compareDelivery, expectedCommands, printedCommands, sliceCube } from '../helpers/sliced.js'
import { checksum } from '../../src/executors/printer/gcode.js'

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

/** unnumbered M105 sent during the job: nudges (the handshake probes come before the job's M110) */
const nudges = (rx: string[]) => rx.slice(rx.findLastIndex((l) => l.startsWith('N0 M110'))).filter((l) => l === 'M105')

const until = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

test('listing serial ports: without udev the device folder is read; other failures are not hidden', async () => {
  const dev = join(dir, 'dev')
  mkdirSync(dev)
  for (const n of ['ttyUSB0', 'ttyACM1', 'ttyS0', 'tty1', 'null']) writeFileSync(join(dev, n), '')
  const noUdev = Object.assign(new Error('spawn udevadm ENOENT'), { code: 'ENOENT', path: 'udevadm' })
  assert.deepEqual(await listSerialPorts({ list: () => Promise.reject(noUdev), devDir: dev }),
    [{ path: join(dev, 'ttyACM1') }, { path: join(dev, 'ttyUSB0') }])
  await assert.rejects(listSerialPorts({ list: () => Promise.reject(new Error('permission denied')), devDir: dev }), /permission denied/)
  const listed = [{ path: '/dev/ttyUSB3', manufacturer: 'Prusa', serialNumber: 'CZ1', vendorId: '2c99', productId: '0002', pnpId: 'x' }]
  assert.deepEqual(await listSerialPorts({ list: async () => listed }), [{ path: '/dev/ttyUSB3', manufacturer: 'Prusa', serialNumber: 'CZ1', vendorId: '2c99', productId: '0002' }])
  // here, for real: whatever is listed exists
  for (const p of await listSerialPorts()) assert.ok(existsSync(p.path), p.path)
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

  test('lost oks are recovered by an M105 nudge within seconds: no line lost or doubled', async () => {
    // the default nudge (4 s): at 0.1 % lost, a 60 s stall each would time the test out
    await withPrinter(['--drop-ok', '0.001', '--seed', '3'], { temperatureIntervalMs: 0 }, async (printer, sim) => {
      const t0 = Date.now()
      const result = await printer.print(cube)
      assert.equal(result.status, 'complete')
      assert.deepEqual(compareDelivery(expected, printedCommands(sim.log())),
        { expected: expected.length, received: expected.length, missing: 0, doubled: 0, inOrder: true })
      const n = nudges(sim.received()).length
      assert.ok(n >= 1, 'oks were lost and nudged (no polls in this test)')
      assert.ok(Date.now() - t0 < n * 4000 + 10000, `${n} nudges in ${Date.now() - t0} ms`)
    })
  })

  test('long commands and busy firmware are not nudged', async () => {
    const file = join(dir, 'long.gcode')
    writeFileSync(file, 'G28\nG4 S1\nG1 X10\nG1 X20\nG1 X30\n')
    await withPrinter(['--long-ms', '600', '--busy', '1', '--busy-ms', '300'], { nudgeMs: 150, temperatureIntervalMs: 0 }, async (printer, sim) => {
      assert.equal((await printer.print(file)).status, 'complete')
      assert.deepEqual(printedCommands(sim.log()), ['G28', 'G4 S1', 'G1 X10', 'G1 X20', 'G1 X30'])
      assert.deepEqual(nudges(sim.received()), [], 'no nudge')
    })
  })

  test("Repetier's `wait` stands for a lost ok", async () => {
    await withPrinter(['--repetier', '--drop-ok', '0.002', '--seed', '5'], { temperatureIntervalMs: 0, nudgeMs: 30000 }, async (printer, sim) => {
      const t0 = Date.now()
      assert.equal((await printer.print(cube)).status, 'complete')
      assert.deepEqual(compareDelivery(expected, printedCommands(sim.log())),
        { expected: expected.length, received: expected.length, missing: 0, doubled: 0, inOrder: true })
      assert.deepEqual(nudges(sim.received()), [], 'no nudge: wait did it')
      assert.ok(Date.now() - t0 < 20000, `${Date.now() - t0} ms`)
    })
  })

  test('M110 and line numbers written in the file do not break the numbering', async () => {
    const file = join(dir, 'numbered.gcode')
    const head = expected.slice(0, 300)
    const lines = head.map((c, i) => i >= 150 && i < 160 ? `N${i} ${c}*${checksum(`N${i} ${c}`)}` : c)
    lines.splice(100, 0, 'M110 N0')
    lines.splice(200, 0, 'N7 M110*' + checksum('N7 M110'))
    writeFileSync(file, lines.join('\n') + '\n')
    await withPrinter([], { temperatureIntervalMs: 0 }, async (printer, sim) => {
      const result = await printer.print(file)
      assert.equal(result.status, 'complete')
      assert.deepEqual(printedCommands(sim.log()), head)
      await printer.close()
      await until(() => sim.stats() !== undefined)
      assert.equal(sim.stats()!.errors, 0, 'the firmware never had to ask for a resend')
    })
  })

  test('errors: recoverable ones (unknown command, SD card) let the print go on', async () => {
    await withPrinter(['--delay-ms', '1'], {}, async (printer, sim) => {
      const job = printer.print(cube)
      await until(() => printedCommands(sim.log()).length > 100)
      sim.say('Error:Unknown command: "Q1"', 'Error:volume.init failed', '!! Unknown command:"Q2"')
      assert.equal((await job).status, 'complete')
      assert.deepEqual(compareDelivery(expected, printedCommands(sim.log())),
        { expected: expected.length, received: expected.length, missing: 0, doubled: 0, inOrder: true })
    })
  })

  test('errors: thermal runaway fails the print at once, the printer is made safe, and a halted printer gets no job until it restarts', async () => {
    await withPrinter(['--delay-ms', '1'], { safeTimeoutMs: 300 }, async (printer, sim) => {
      const job = printer.print(cube)
      await until(() => printedCommands(sim.log()).length > 100)
      const t0 = Date.now()
      const seen = sim.received().length
      sim.say('Error:Thermal Runaway, system stopped! Heater_ID: 0', 'Error:Printer halted. kill() called!')
      await assert.rejects(job, isPrinterError('halted', /firmware halted: Thermal Runaway/))
      assert.ok(Date.now() - t0 < 2000, `${Date.now() - t0} ms`)
      // the firmware no longer answers: unnumbered safety commands, then M112
      await until(() => sim.received().includes('M112'))
      assert.deepEqual(sim.received().slice(seen).filter((l) => !l.startsWith('N')), [...SAFE, 'M112'])
      assert.equal(printer.state, 'halted')
      const before = sim.received().length
      await assert.rejects(printer.print(cube), isPrinterError('halted', /has halted .*reset it/))
      assert.equal(sim.received().length, before, 'nothing sent to a halted printer')
      sim.say('start')
      await until(() => printer.state === 'idle')
      const small = join(dir, 'small.gcode')
      writeFileSync(small, 'G28\nG1 X5\n')
      assert.equal((await printer.print(small)).status, 'complete')
      assert.deepEqual(printedCommands(sim.log()).slice(-2), ['G28', 'G1 X5'])
    })
  })

  // Marlin follows `Resend:` with an `ok`; other firmware does not, and the `ok` of the line in flight
  // comes instead: either way the safety commands' own `ok`s are enough, and no M112 follows them
  for (const reply of [['Resend: 999999'], ['Resend: 999999', 'ok']]) {
    test(`a protocol error still sends the safety commands (unnumbered when needed): ${reply.join(' + ')}`, async () => {
      await withPrinter(['--delay-ms', '1'], {}, async (printer, sim) => {
        const job = printer.print(cube)
        await until(() => printedCommands(sim.log()).length > 100)
        sim.say(...reply)
        await assert.rejects(job, isPrinterError('protocol', /asked for line 999999/))
        assert.deepEqual(printedCommands(sim.log()).slice(-4), SAFE, 'heaters, fan and motors off, acknowledged')
        assert.deepEqual(sim.received().slice(-4), SAFE, 'unnumbered, and no M112 after them')
        assert.equal(printer.state, 'idle')
      })
    })
  }

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
      assert.equal(printedCommands(sim.log()).at(-1), 'M400', 'pause waits for the moves to finish')
      const before = printedCommands(sim.log()).length
      const polls = sim.log().filter((c) => c === 'M105').length
      await until(() => sim.log().filter((c) => c === 'M105').length >= polls + 4)
      assert.equal(printedCommands(sim.log()).length, before, 'nothing sent while paused (temperatures still polled)')
      assert.ok(before >= 200 && before < expected.length)
      assert.equal(printer.progress!.linesSent, before - 1)
      printer.resume()
      assert.equal(printer.state, 'printing')
      const result = await job
      assert.equal(result.status, 'complete')
      assert.deepEqual(compareDelivery(expected, printedCommands(sim.log()).filter((c) => c !== 'M400')),
        { expected: expected.length, received: expected.length, missing: 0, doubled: 0, inOrder: true })
    })
  })

  test('pause parks the head (park G-code) and resume brings back temperatures and position; ;@pause in the file pauses', async () => {
    const file = join(dir, 'atpause.gcode')
    const body = expected.slice(0, 400)
    const at = body.findIndex((c, i) => i > 200 && /^G1 X[\d.]+ Y[\d.]+ E/.test(c))
    writeFileSync(file, [...body.slice(0, at), ';@pause', ...body.slice(at)].join('\n') + '\n')
    const park = ['G91', 'G1 Z10', 'G90', 'G1 X0 Y200']
    await withPrinter([], { park, temperatureIntervalMs: 50 }, async (printer, sim) => {
      const states: string[] = []
      const job = printer.print(file, { progressIntervalMs: 0, onProgress: (p) => states.push(p.state) })
      await until(() => printer.state === 'paused' && printedCommands(sim.log()).at(-1) === 'G1 X0 Y200')
      assert.ok(states.includes('paused'), 'the pause is reported')
      const log = printedCommands(sim.log())
      assert.deepEqual(log.slice(-6), ['M400', 'M114', ...park])
      assert.deepEqual(log.slice(0, -6), body.slice(0, at), 'paused where the file said')
      printer.resume()
      assert.equal((await job).status, 'complete')
      const after = printedCommands(sim.log()).slice(log.length)
      // where the head was: the file's last absolute move before the pause
      const last = body.slice(0, at).filter((c) => /^G1 .*X/.test(c)).at(-1)!
      const x = /X([\d.]+)/.exec(last)![1]
      const y = /Y([\d.]+)/.exec(last)![1]
      const z = /Z([\d.]+)/.exec(body.slice(0, at).filter((c) => /^G1 .*Z/.test(c)).at(-1)!)![1]
      const restore = after.slice(0, after.indexOf(body[at]))
      assert.equal(restore[0], 'M104 S200', 'the hotend back to its target first')
      assert.ok(restore.indexOf('M109 S200') < restore.findIndex((c) => c.startsWith('G1 X')), restore.join('|'))
      // M114 reports two decimals, as Marlin does
      const r2 = (v: string) => Number(Number(v).toFixed(2))
      assert.ok(restore.includes(`G1 X${r2(x)} Y${r2(y)} F3000`), `${last}: ${restore.join('|')}`)
      assert.ok(restore.includes(`G1 Z${r2(z)} F600`), restore.join('|'))
      assert.ok(restore.some((c) => /^G92 E/.test(c)), restore.join('|'))
      assert.deepEqual(after.slice(restore.length), body.slice(at), 'the rest of the file, once')
    })
  })

  test('//action:pause, //action:resume and //action:cancel from the printer', async () => {
    await withPrinter(['--delay-ms', '1'], {}, async (printer, sim) => {
      const job = printer.print(cube)
      await until(() => printedCommands(sim.log()).length > 100)
      sim.say('//action:pause')
      await until(() => printer.state === 'paused' && printedCommands(sim.log()).at(-1) === 'M400')
      const n = printedCommands(sim.log()).length
      sim.say('//action:resume')
      await until(() => printedCommands(sim.log()).length > n + 50)
      assert.equal(printer.state, 'printing')
      sim.say('//action:cancel')
      assert.equal((await job).status, 'cancelled')
      const log = printedCommands(sim.log())
      assert.deepEqual(log.slice(-4), SAFE)
      const sent = log.slice(0, -4).filter((c) => c !== 'M400')
      assert.deepEqual(sent, expected.slice(0, sent.length))
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

  for (const [kind, message] of [['error', /firmware halted: Printer halted\. kill\(\) called!/], ['bang', /firmware halted/]] as const) {
    test(`a firmware failure (${kind}) fails the job and the printer is made safe`, async () => {
      await withPrinter(['--fail-after', '300', '--fail-with', kind], { safeTimeoutMs: 300 }, async (printer, sim) => {
        const t0 = Date.now()
        await assert.rejects(printer.print(cube), isPrinterError('halted', message))
        assert.ok(Date.now() - t0 < 3000)
        await until(() => sim.received().includes('M112'))
        assert.equal(printer.state, 'halted')
        assert.match(printer.lastError!, /halted|M112/)
        assert.deepEqual(sim.received().filter((l) => !l.startsWith('N')).slice(-5), [...SAFE, 'M112'])
      })
    })
  }

  test('a printer that reboots mid-print fails the job; one that reboots while paused too, and prints on after it (a reset while idle: see the thermal runaway test)', async () => {
    await withPrinter(['--restart-after', '200'], { idleTimeoutMs: 5000 }, async (printer) => {
      await assert.rejects(printer.print(cube), isPrinterError('reset', /the printer restarted \(reset\) while the print was running/))
    })
    await withPrinter(['--delay-ms', '1'], {}, async (printer, sim) => {
      let paused: Promise<void> | undefined
      const job = printer.print(cube, { progressIntervalMs: 0, onProgress: (p) => { if (p.linesSent >= 100) paused ??= printer.pause() } })
      await until(() => paused !== undefined)
      await paused
      sim.say('start')
      await assert.rejects(job, isPrinterError('reset', /restarted \(reset\) while the print was paused/))
      assert.equal(printer.state, 'idle')
      const small = join(dir, 'small2.gcode')
      writeFileSync(small, 'G28\nG1 X5\nG1 X6\n')
      assert.equal((await printer.print(small)).status, 'complete')
      assert.deepEqual(printedCommands(sim.log()).slice(-3), ['G28', 'G1 X5', 'G1 X6'])
    })
  })

  test('emergency stop: M112 reaches the firmware at once, even behind a heat-up wait', async () => {
    const file = join(dir, 'heat2.gcode')
    writeFileSync(file, 'M140 S60\nM104 S200\nM109 S200\nG28\nG1 X10 Y10\n')
    await withPrinter(['--heat-ms', '30000', '--no-emergency-parser'], {}, async (printer, sim) => {
      const job = printer.print(file)
      await until(() => sim.log().includes('M109 S200'))
      const t0 = Date.now()
      printer.emergencyStop()
      await assert.rejects(job, isPrinterError('halted', /emergency stop/))
      await until(() => sim.received().includes('M112'))
      assert.ok(Date.now() - t0 < 1000, `${Date.now() - t0} ms`)
      assert.equal(printer.state, 'halted')
      await assert.rejects(printer.print(file), isPrinterError('halted'))
    })
  })

  test('close() during a heat-up on firmware without EMERGENCY_PARSER: safety commands and M112 go out at once', async () => {
    const file = join(dir, 'heat3.gcode')
    writeFileSync(file, 'M140 S60\nM104 S200\nM109 S200\nG28\nG1 X10 Y10\n')
    await withPrinter(['--heat-ms', '60000', '--no-emergency-parser'], { safeTimeoutMs: 1000 }, async (printer, sim) => {
      const job = printer.print(file)
      await until(() => sim.log().includes('M109 S200'))
      const t0 = Date.now()
      await printer.close()
      assert.ok(Date.now() - t0 < 2500, `closed in ${Date.now() - t0} ms`)
      assert.equal((await job).status, 'cancelled')
      await until(() => sim.received().includes('M112'))
      const rx = sim.received()
      assert.deepEqual(rx.slice(rx.findIndex((l) => l.includes('M109 S200')) + 1), ['M108', ...SAFE, 'M112'])
    })
  })

  test('an unplugged printer is reconnected when it comes back, and made safe', async () => {
    const sim = await startSimPty(['--hangup-after', '300'])
    const printer = createPrinter({ name: 'sim', path: sim.path, connectTimeoutMs: 3000, probeIntervalMs: 100, settleMs: 30, reconnectMs: 100 })
    let again: SimPty | undefined
    try {
      await assert.rejects(printer.print(cube), isPrinterError('disconnected'))
      assert.equal(printer.state, 'disconnected')
      const states: string[] = []
      printer.on('state', (s) => states.push(s))
      await sim.stop({ keepDir: true })
      again = await startSimPty([], { dir: sim.dir })
      await until(() => printer.state === 'idle', 10000)
      assert.deepEqual(states, ['idle'], 'disconnected until it is back, without flapping')
      const log = again.log()
      assert.deepEqual(printedCommands(log.slice(log.lastIndexOf('M110 N0') - 0)).slice(-4), SAFE, 'the print that was cut off is made safe')
    } finally {
      await printer.close()
      await again?.stop()
      rmSync(sim.dir, { recursive: true, force: true })
    }
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
