import { test } from 'node:test'
import assert from 'node:assert/strict'
import { checkTree, pathProblem } from '../../src/node/tree.js'
import { TaskError } from '../../src/node/errors.js'

test('a path from a request names a file inside the task folder, or says why not', () => {
  for (const ok of ['a.scad', 'lib/x.scad', '.hidden', 'a..b', 'é/ü.scad', 'a b/c,d.stl', 'x'.repeat(255), Array(32).fill('d').join('/')]) {
    assert.equal(pathProblem(ok), undefined, ok)
  }
  const bad: Array<[string, RegExp]> = [
    ['', /empty/], ['/etc/passwd', /absolute/], ['..', /"\.\." segment/], ['a/../../b', /"\.\." segment/], ['./a', /"\." segment/],
    ['a//b', /empty segment/], ['a/', /empty segment/], ['a\\b', /backslash/], ['a\0b', /control/], ['a\tb', /control/],
    ['a\u0085b', /control/], ['x'.repeat(1025), /over 1024 bytes/], ['é'.repeat(513), /over 1024 bytes/],
    [Array(33).fill('d').join('/'), /over 32 levels/], ['x'.repeat(256), /segment over 255 bytes/],
  ]
  for (const [p, why] of bad) assert.match(pathProblem(p) ?? '', why, JSON.stringify(p))
})

test('the names of a task folder together: no duplicate, no file where a folder is, not the output', () => {
  checkTree(['main.scad', 'lib/a.scad', 'lib/b.scad', 'lib/sub/c.scad'], ['1-000001.stl'])
  const refused = (names: string[], reserved: string[], msg: RegExp) =>
    assert.throws(() => checkTree(names, reserved), (e: Error) => e instanceof TaskError && e.kind === 'invalid' && msg.test(e.message), names.join(' '))
  refused(['a', 'a'], [], /^path "a" is given twice$/)
  refused(['lib/x.scad', 'lib'], [], /^path "lib" is a folder of another file/)
  refused(['lib', 'lib/x.scad'], [], /^path "lib\/x\.scad" puts a folder where "lib" is a file$/)
  refused(['1-000001.stl'], ['1-000001.stl'], /is the name of the task's output/)
  refused(['1-000001.stl/x'], ['1-000001.stl'], /puts a folder where "1-000001\.stl" is a file/)
  refused(['ok', '../x'], [], /^path "\.\.\/x" has a "\.\." segment$/)
})
