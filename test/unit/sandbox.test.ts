import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { prepareRunDir, probeSandbox, toolEnv, wrap } from '../../src/executors/sandbox.js'

test('read-only paths under /tmp stay visible beside the private, writable /tmp, inputs are read-only, the rest of the host is not there', (t) => {
  const sb = probeSandbox('auto')
  if (sb.mode !== 'bwrap') return t.skip(`no sandbox here: ${sb.note}`)
  const dir = mkdtempSync(join(tmpdir(), 'rrcloud-sandbox-'))
  try {
    chmodSync(dir, 0o755)
    const lib = join(dir, 'lib')
    const run = join(dir, 'run')
    spawnSync('mkdir', [lib])
    writeFileSync(join(lib, 'part.txt'), 'from the library\n')
    writeFileSync(join(dir, 'input.txt'), 'the input\n')
    writeFileSync(join(dir, 'private.txt'), 'not for tools\n')
    const inputs = [{ host: join(dir, 'input.txt'), name: 'in.txt' }]
    prepareRunDir(sb, run, inputs)
    const script = `cat ${join(lib, 'part.txt')} in.txt; cat ${join(dir, 'private.txt')} 2>/dev/null || echo private: no; echo x > in.txt 2>/dev/null || echo input: read-only; touch /tmp/scratch && echo tmp: writable; echo out > out.txt`
    const cmd = wrap(sb, { exe: '/bin/sh', args: ['-c', script], runDir: run, inputs, ro: [lib], env: {}, limits: {} })
    const r = spawnSync(cmd.exe, cmd.args, { cwd: run, env: toolEnv(sb, run, {}), encoding: 'utf8' })
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, 'from the library\nthe input\nprivate: no\ninput: read-only\ntmp: writable\n')
    assert.equal(spawnSync('cat', [join(run, 'out.txt')], { encoding: 'utf8' }).stdout, 'out\n')
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('toolEnv: $task is /task in the sandbox, the task\'s folder (absolute) without one', () => {
  const extra = { OPENSCADPATH: '$task/.lib', LANG: 'de_DE.UTF-8' }
  const boxed = toolEnv({ mode: 'bwrap', note: '' }, '/data/tasks/run/1-000001', extra)
  assert.equal(boxed.OPENSCADPATH, '/task/.lib')
  assert.equal(boxed.LANG, 'de_DE.UTF-8', 'the descriptor\'s variables win')
  assert.equal(toolEnv({ mode: 'none', note: '' }, '/data/tasks/run/1-000001', extra).OPENSCADPATH, '/data/tasks/run/1-000001/.lib')
  assert.equal(toolEnv({ mode: 'none', note: '' }, 'rel/run/2', extra).OPENSCADPATH, join(process.cwd(), 'rel/run/2/.lib'))
})
