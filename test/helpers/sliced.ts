// Real sliced G-code for the printer tests and the benchmark: the fixture cube, rendered by
// openscad and sliced by slic3r, so nothing large is committed.
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const fixtures = fileURLToPath(new URL('../fixtures', import.meta.url))

/** Slices the 10 mm fixture cube, scaled by `scale`, into dir; returns the G-code path. */
export function sliceCube (dir: string, scale = 1): string {
  const stl = join(dir, 'cube.stl')
  const gcode = join(dir, `cube-x${scale}.gcode`)
  execFileSync('openscad', ['-o', stl, join(fixtures, 'cube.scad')], { stdio: 'ignore' })
  execFileSync('slic3r', ['--no-gui', `--load=${join(fixtures, 'slic3r.ini')}`, `--scale=${scale}`, stl, `--output=${gcode}`],
    { stdio: 'ignore' })
  return gcode
}

/**
 * Slices a sphere (radius mm, fn facets around) into dir: curved walls make many short moves,
 * the kind of file where the serial line, not the printer, sets the pace. Returns the G-code path.
 */
export function sliceSphere (dir: string, radius = 6, fn = 40): string {
  const scad = join(dir, 'sphere.scad')
  const stl = join(dir, 'sphere.stl')
  const gcode = join(dir, `sphere-r${radius}.gcode`)
  writeFileSync(scad, `sphere(r = ${radius}, $fn = ${fn});\n`)
  execFileSync('openscad', ['-o', stl, scad], { stdio: 'ignore' })
  execFileSync('slic3r', ['--no-gui', `--load=${join(fixtures, 'slic3r.ini')}`, stl, `--output=${gcode}`], { stdio: 'ignore' })
  return gcode
}

/**
 * The commands a host must deliver for this file, worked out independently of the code under
 * test: `;` comments and blank lines dropped, whitespace trimmed (slic3r writes no other comments).
 */
export function expectedCommands (gcodeFile: string): string[] {
  return readFileSync(gcodeFile, 'utf8').split('\n')
    .map((l) => l.replace(/;.*/, '').trim())
    .filter(Boolean)
}

/** The simulator's log without the host's own M110 (numbering) and M105 (temperature) lines. */
export function printedCommands (simLog: string[]): string[] {
  return simLog.filter((c) => !/^M110\b/.test(c) && !/^M105\b/.test(c))
}

export interface Delivery { expected: number, received: number, missing: number, doubled: number, inOrder: boolean }

/** Compares what the firmware accepted with what the file holds: lost, doubled, out of order. */
export function compareDelivery (expected: string[], received: string[]): Delivery {
  const count = (xs: string[]) => xs.reduce((m, x) => m.set(x, (m.get(x) ?? 0) + 1), new Map<string, number>())
  const want = count(expected)
  const got = count(received)
  let missing = 0
  let doubled = 0
  for (const [cmd, n] of want) missing += Math.max(0, n - (got.get(cmd) ?? 0))
  for (const [cmd, n] of got) doubled += Math.max(0, n - (want.get(cmd) ?? 0))
  const inOrder = expected.length === received.length && expected.every((c, i) => c === received[i])
  return { expected: expected.length, received: received.length, missing, doubled, inOrder }
}
