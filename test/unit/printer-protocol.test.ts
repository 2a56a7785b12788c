import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isWaitCommand, parseReply, parseTemperatures } from '../../src/executors/printer/protocol.js'

test('parseReply classifies what Marlin and its relatives answer', () => {
  assert.deepEqual(parseReply('ok'), { kind: 'ok' })
  assert.deepEqual(parseReply('ok N12 P15 B3'), { kind: 'ok' })
  assert.deepEqual(parseReply('Resend: 6'), { kind: 'resend', line: 6 })
  assert.deepEqual(parseReply('Resend:6\r'), { kind: 'resend', line: 6 })
  assert.deepEqual(parseReply('rs N2 Expected checksum 67'), { kind: 'resend', line: 2 })
  assert.deepEqual(parseReply('rs 9'), { kind: 'resend', line: 9 })
  assert.deepEqual(parseReply('Error:checksum mismatch, Last Line: 5'), { kind: 'error', message: 'checksum mismatch, Last Line: 5' })
  assert.deepEqual(parseReply('!!'), { kind: 'fatal', message: 'firmware halted (!!)' })
  assert.deepEqual(parseReply('echo:busy: processing'), { kind: 'busy' })
  assert.deepEqual(parseReply('start'), { kind: 'start' })
  assert.deepEqual(parseReply('echo:Unknown command: "X5"'), { kind: 'other', text: 'echo:Unknown command: "X5"' })
  assert.deepEqual(parseReply('wait'), { kind: 'other', text: 'wait' })
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
