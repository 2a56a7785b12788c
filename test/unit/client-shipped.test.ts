import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { shapeTable, shippedShape } from '../../src/client/shipped.js'
import { localDescriptors, shapeOf } from '../../src/client/shapes.js'
import { ClientError } from '../../src/client/errors.js'

test('the shape table: every shipped descriptor, its text and its shape as parsed (no limit as null)', async () => {
  const table = await shapeTable()
  assert.deepEqual(Object.keys(table).sort(), localDescriptors().map((d) => d.name).sort())
  for (const d of localDescriptors()) {
    const { shape, text } = table[d.name]
    assert.equal(text, readFileSync(d.file, 'utf8'))
    assert.deepEqual({ ...shape, maxInputs: shape.maxInputs ?? Infinity }, shapeOf(d))
  }
  assert.equal(JSON.parse(JSON.stringify(table)).echo.shape.maxInputs, null)
})

test('shippedShape: from the table while the descriptor has its text, else parsed; none for other names', async () => {
  const d = mkdtempSync(join(tmpdir(), 'rrcloud-shipped-'))
  try {
    const where = { services: join(d, 'services'), table: join(d, 'shapes.json') }
    const text = 'cmd = cat\ninputs = 1-2\nfileOut = $id.txt\noutput = -o $fileOut\n'
    mkdirSync(where.services)
    writeFileSync(join(where.services, 'cat.conf'), text)
    const parsed = { name: 'cat', preargs: [], output: '-o $fileOut', fileOut: '$id.txt', minInputs: 1, maxInputs: 2, inputPrefix: undefined, printer: false }
    // no table: parsed
    assert.deepEqual(await shippedShape('cat', where), parsed)
    // a table for this text is taken as it is (here: one that says something else, to tell)
    const { inputPrefix, ...told } = { ...parsed, minInputs: 2, maxInputs: null }
    writeFileSync(where.table, JSON.stringify({ cat: { text, shape: told } }))
    assert.deepEqual(await shippedShape('cat', where), { ...told, maxInputs: Infinity })
    // the descriptor changed since the build: parsed again
    writeFileSync(join(where.services, 'cat.conf'), text.replace('1-2', '3'))
    assert.deepEqual(await shippedShape('cat', where), { ...parsed, minInputs: 3, maxInputs: 3 })
    // a broken one says so; a damaged table is no table
    writeFileSync(join(where.services, 'cat.conf'), 'inputs = many\n')
    await assert.rejects(shippedShape('cat', where), (e: Error) => e instanceof ClientError && /bad service descriptor: .*inputs/.test(e.message))
    writeFileSync(where.table, '{')
    writeFileSync(join(where.services, 'cat.conf'), text)
    assert.deepEqual(await shippedShape('cat', where), parsed)
    for (const name of ['dog', '../cat', 'Cat']) assert.equal(await shippedShape(name, where), undefined)
  } finally {
    rmSync(d, { recursive: true, force: true })
  }
})
