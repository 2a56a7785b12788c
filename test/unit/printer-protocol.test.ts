import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isLongCommand, isWaitCommand, parseReply, parseTemperatures } from '../../src/executors/printer/protocol.js'
import { fileCommand } from '../../src/executors/printer/gcode.js'
import { MotionState, parsePosition, unparkCommands } from '../../src/executors/printer/pause.js'
import { parsePrinterSpec } from '../../src/node/node.js'

test('parseReply classifies what Marlin and its relatives answer', () => {
  assert.deepEqual(parseReply('ok'), { kind: 'ok' })
  assert.deepEqual(parseReply('ok N12 P15 B3'), { kind: 'ok', advanced: { line: 12, planner: 15, buffer: 3 } })
  assert.deepEqual(parseReply('ok P15 B0'), { kind: 'ok', advanced: { planner: 15, buffer: 0 } })
  assert.deepEqual(parseReply('ok T:20.0 /0.0 B:21.0 /0.0 @:0 B@:0').advanced, undefined)
  assert.deepEqual(parseReply('Resend: 6'), { kind: 'resend', line: 6 })
  assert.deepEqual(parseReply('Resend:6\r'), { kind: 'resend', line: 6 })
  assert.deepEqual(parseReply('rs N2 Expected checksum 67'), { kind: 'resend', line: 2 })
  assert.deepEqual(parseReply('rs 9'), { kind: 'resend', line: 9 })
  assert.deepEqual(parseReply('Error:checksum mismatch, Last Line: 5'), { kind: 'error', message: 'checksum mismatch, Last Line: 5', class: 'resend' })
  assert.deepEqual(parseReply('!!'), { kind: 'fatal', message: 'firmware halted (!!)' })
  assert.deepEqual(parseReply('echo:busy: processing'), { kind: 'busy' })
  assert.deepEqual(parseReply('start'), { kind: 'start' })
  assert.deepEqual(parseReply('echo:Unknown command: "X5"'), { kind: 'other', text: 'echo:Unknown command: "X5"' })
  assert.deepEqual(parseReply('wait'), { kind: 'wait' })
  assert.deepEqual(parseReply('//action:pause'), { kind: 'action', action: 'pause' })
  assert.deepEqual(parseReply('echo://action:cancel'), { kind: 'action', action: 'cancel' })
})

test('firmware errors are sorted as OctoPrint does: with a resend, recoverable, fatal, unknown', () => {
  const kind = (line: string) => { const r = parseReply(line); return r.kind === 'error' ? r.class : r.kind }
  for (const l of ['Error:Line Number is not Last Line Number+1, Last Line: 3', 'Error:No Checksum with line number, Last Line: 9', 'Error:Format error']) assert.equal(kind(l), 'resend', l)
  for (const l of ['Error:Unknown command: "Q1"', 'Error:volume.init failed', 'Error:open failed, File: x.g', '!! Unknown command:"Q2"', 'Error:No media']) assert.equal(kind(l), 'recoverable', l)
  for (const l of ['!!', 'Error:Printer halted. kill() called!', 'Error:Thermal Runaway, system stopped! Heater_ID: 0', 'Error:MAXTEMP triggered', 'Error:Heating failed', 'Error:Printer stopped due to errors. Fix the error and use M999 to restart.']) assert.equal(kind(l), 'fatal', l)
  assert.equal(kind('Error:something new'), 'unknown')
})

test('long commands are not nudged early', () => {
  for (const c of ['G28', 'G28 X', 'G29', 'G4 S1', 'M109 S200', 'M190 S60', 'M303 E0 S200', 'M400']) assert.equal(isLongCommand(c), true, c)
  for (const c of ['G1 X1', 'G280', 'M105', 'M104 S200', 'G2 X1 Y1 I1']) assert.equal(isLongCommand(c), false, c)
})

test("a file's own line numbers and checksums are dropped; ;@pause is a pause", () => {
  assert.equal(fileCommand('N12 G1 X1*34'), 'G1 X1')
  assert.equal(fileCommand('N7 M110 N0*11 ; reset'), 'M110 N0')
  assert.equal(fileCommand(';@pause'), '@pause')
  assert.equal(fileCommand('@pause change filament'), '@pause')
  assert.equal(fileCommand('; just a comment'), '')
  assert.equal(fileCommand('G1 X2 ; move'), 'G1 X2')
})

test('park and unpark: position from M114, targets back first, the file\'s modes after', () => {
  assert.deepEqual(parsePosition(['echo:foo', 'X:10.00 Y:20.50 Z:0.30 E:1.20 Count X:800 Y:1640 Z:120']), { X: 10, Y: 20.5, Z: 0.3, E: 1.2 })
  assert.equal(parsePosition(['nothing']), undefined)
  const m = new MotionState()
  for (const c of ['G91', 'M83', 'G1 X1 F1800']) m.track(c)
  assert.deepEqual(unparkCommands({ position: { X: 10, Y: 20.5, Z: 0.3, E: 1.2 }, targets: { T: { actual: 150, target: 210 }, B: { actual: 60, target: 60 } } }, m), [
    'M104 S210', 'M140 S60', 'M109 S210', 'M190 S60', 'G90', 'G1 X10 Y20.5 F3000', 'G1 Z0.3 F600', 'G92 E1.2', 'G91', 'M83', 'G1 F1800',
  ])
})

test('--printer takes park and ahead options', () => {
  assert.deepEqual(parsePrinterSpec('mk3=/dev/ttyUSB0@115200'), { name: 'mk3', path: '/dev/ttyUSB0', baudRate: 115200 })
  assert.deepEqual(parsePrinterSpec('mk3=/dev/ttyUSB0@115200,park=G91;G1 Z10;G90'), { name: 'mk3', path: '/dev/ttyUSB0', baudRate: 115200, park: ['G91', 'G1 Z10', 'G90'] })
  assert.deepEqual(parsePrinterSpec('mk3=/dev/ttyUSB0,ahead=1,park=G91'), { name: 'mk3', path: '/dev/ttyUSB0', baudRate: undefined, ahead: 1, park: ['G91'] })
  assert.throws(() => parsePrinterSpec('mk3=/dev/ttyUSB0,ahead=0'), /unknown option "ahead=0"/)
  assert.throws(() => parsePrinterSpec('mk3=/dev/ttyUSB0,speed=3'), /unknown option "speed=3"/)
})

test('temperatures come from ok lines, M109 progress lines and auto-reports', () => {
  assert.deepEqual(parseReply('ok T:20.0 /0.0 B:21.5 /60.0 @:0 B@:0'), {
    kind: 'ok',
    temperatures: { T: { actual: 20, target: 0 }, B: { actual: 21.5, target: 60 } },
  })
  assert.deepEqual(parseReply(' T:180.3 /200.0 B:60.0 /60.0 @:127 B@:0 W:?'), {
    kind: 'temperatures',
    temperatures: { T: { actual: 180.3, target: 200 }, B: { actual: 60, target: 60 } },
  })
  assert.deepEqual(parseTemperatures('ok T0:200.1 /200.0 T1:25.0 /0.0 B:60.0 /60.0'), {
    T0: { actual: 200.1, target: 200 }, T1: { actual: 25, target: 0 }, B: { actual: 60, target: 60 },
  })
  assert.equal(parseTemperatures('ok'), undefined)
  assert.equal(parseTemperatures('echo:busy: processing'), undefined)
})

test('isWaitCommand picks the commands M108 can interrupt', () => {
  for (const c of ['M109 S200', 'M190 S60', 'M191 S40', 'M0', 'M1 wait']) assert.equal(isWaitCommand(c), true, c)
  for (const c of ['M104 S200', 'M1090', 'M10', 'G1 X1', 'M105']) assert.equal(isWaitCommand(c), false, c)
})
