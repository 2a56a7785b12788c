import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { shapeTable, shippedShape } from '../../src/client/shipped.js'
import { localDescriptors, parseChecked, shapeOf } from '../../src/client/shapes.js'
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

/** A shape as it reads back from JSON: a key whose value is undefined (no inputPrefix) is no key. */
const asRead = (o: object) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined))
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

test('every shipped descriptor (openscad with missing and env.$task, slic3r with deny, printrun, ...): its shape from the table is its shape parsed', async (t) => {
  const services = join(root, 'services')
  const shipped = localDescriptors()
  assert.ok(shipped.length >= 6, 'the shipped descriptors are found')
  const parsed = (name: string) => {
    const file = join(services, `${name}.conf`)
    return shapeOf(parseChecked(name, readFileSync(file, 'utf8'), file))
  }
  const d = mkdtempSync(join(tmpdir(), 'rrcloud-shipped-'))
  try {
    // the table as the build writes it, read back as a run reads it
    const table = join(d, 'shapes.json')
    writeFileSync(table, JSON.stringify(await shapeTable()))
    const entries = JSON.parse(readFileSync(table, 'utf8'))
    for (const { name } of shipped) {
      assert.deepEqual(asRead({ ...entries[name].shape, maxInputs: entries[name].shape.maxInputs ?? Infinity }), asRead(parsed(name)), name)
      assert.deepEqual(asRead((await shippedShape(name, { services, table }))!), asRead(parsed(name)), name)
    }
  } finally {
    rmSync(d, { recursive: true, force: true })
  }
  // the table of the last build (dist/bundle/shapes.json): what it says of a descriptor it has the text of
  const built = join(root, 'dist', 'bundle', 'shapes.json')
  if (!existsSync(built)) return t.diagnostic('no build: dist/bundle/shapes.json not checked')
  const entries = JSON.parse(readFileSync(built, 'utf8'))
  for (const { name, file } of shipped) {
    if (entries[name]?.text !== readFileSync(file, 'utf8')) {
      t.diagnostic(`${name}: changed since the build (parsed by a run until the next one)`)
      continue
    }
    assert.deepEqual(asRead(await shippedShape(name, { services, table: built }) as object), asRead(parsed(name)), name)
  }
})
