import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ServiceShape } from './args.js'

/**
 * The shapes of the services shipped with rrcloud (services/NAME.conf), as a run needs them. The
 * build writes each descriptor's text and shape, as src/client/shapes.ts makes it, into
 * dist/bundle/shapes.json (scripts/bundle-client.mjs); a run whose descriptor still has that text
 * takes its shape from there, any other parses it. The parser and its schema library would cost a
 * short `SERVICE.cloud` run more than its upload takes.
 */

const SHIPPED = {
  services: fileURLToPath(new URL('../../services', import.meta.url)),
  table: fileURLToPath(new URL('../bundle/shapes.json', import.meta.url)),
}

/** One entry of the table; JSON has no Infinity: `maxInputs` null is no limit. */
export interface ShapeEntry { text: string; shape: Omit<ServiceShape, 'maxInputs'> & { maxInputs: number | null } }

const NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/

function readText (file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

function readTable (file: string): Record<string, ShapeEntry> {
  try {
    return JSON.parse(readText(file) ?? '{}')
  } catch {
    return {} // a damaged table: every descriptor is parsed
  }
}

/** The shape of a service shipped with rrcloud, or undefined when none of that name is. */
export async function shippedShape (name: string, where = SHIPPED): Promise<ServiceShape | undefined> {
  if (!NAME.test(name)) return undefined
  const file = join(where.services, `${name}.conf`)
  const text = readText(file)
  if (text === undefined) return undefined
  const known = readTable(where.table)[name]
  if (known?.text === text) return { ...known.shape, maxInputs: known.shape.maxInputs ?? Infinity }
  const { parseChecked, shapeOf } = await import('./shapes.js')
  return shapeOf(parseChecked(name, text, file))
}

/** The table of the shipped descriptors, as the build writes it. */
export async function shapeTable (): Promise<Record<string, ShapeEntry>> {
  const { localDescriptors, shapeOf } = await import('./shapes.js')
  return Object.fromEntries(localDescriptors().map((d) => {
    const shape = shapeOf(d)
    return [d.name, { text: readFileSync(d.file, 'utf8'), shape: { ...shape, maxInputs: Number.isFinite(shape.maxInputs) ? shape.maxInputs : null } }]
  }))
}
