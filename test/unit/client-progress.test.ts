import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createReporter, formatBytes } from '../../src/client/progress.js'

/** A terminal as the reporter sees one: what it was sent, and a width. */
function fakeTty (columns = 40) {
  const written: string[] = []
  return { written, stream: { isTTY: true, columns, write: (s: string) => { written.push(s); return true } } as unknown as NodeJS.WriteStream }
}

test('on a terminal: one line rewritten in place, cut to its width, cleared at the end', () => {
  const tty = fakeTty(20)
  const r = createReporter(tty.stream)
  assert.equal(r.enabled, true)
  r.state('task 1 busy, a long line that does not fit')
  r.state('task 1 busy, a long line that does not fit') // the same state: not written again
  r.done()
  assert.deepEqual(tty.written, ['\r\x1b[Ktask 1 busy, a long', '\r\x1b[K'])
  const wide = fakeTty(80)
  const w = createReporter(wide.stream)
  w.state('task 1 busy')
  w.bytes('upload', { transferred: 2048, total: 4096, percent: 0.5 }) // within 100 ms of the last line: left out
  w.bytes('upload', { transferred: 4096, total: 4096, percent: 1 }) // the end: always shown
  assert.equal(wide.written.length, 2)
  assert.match(wide.written[1], /^\r\x1b\[Kupload 4\.0 KiB \/ 4\.0 KiB \(100%\)/)
  assert.equal(formatBytes(1536), '1.5 KiB')
})

test('not a terminal: nothing is written, and a run that shows nothing never makes process.stderr', () => {
  const piped = { isTTY: false, write: () => assert.fail('written to a pipe') } as unknown as NodeJS.WriteStream
  const r = createReporter(piped)
  assert.equal(r.enabled, false)
  r.state('busy')
  r.done()
  // stderr a pipe: the default reporter is off, and process.stderr was never asked for
  const code = `
    const { createReporter } = await import(${JSON.stringify(fileURLToPath(new URL('../../src/client/progress.ts', import.meta.url)))})
    let made = false
    const desc = Object.getOwnPropertyDescriptor(process, 'stderr')
    Object.defineProperty(process, 'stderr', { configurable: true, get () { made = true; return desc.get.call(process) } })
    const r = createReporter()
    r.state('busy'); r.done()
    process.stdout.write(JSON.stringify({ enabled: r.enabled, made }))
  `
  const out = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  assert.equal(out.status, 0, out.stderr)
  assert.deepEqual(JSON.parse(out.stdout), { enabled: false, made: false })
})
