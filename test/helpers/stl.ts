// OpenSCAD writes the same mesh in an order that can change with the paths it was given (the
// length of OPENSCADPATH's entries was enough to reorder facets): two STLs are compared as sets of
// facets. A binary STL is compared byte for byte.
import { readFileSync } from 'node:fs'

/** The facets of an ASCII STL, each as its sorted vertices, sorted; null for a binary STL. */
function facets (stl: Buffer): string[] | null {
  const text = stl.toString('latin1')
  if (!/^\s*solid/.test(text) || !/endsolid/.test(text)) return null
  return [...text.matchAll(/outer loop\s+([\s\S]*?)\s+endloop/g)]
    .map((m) => m[1].split('\n').map((l) => l.trim().replace(/\s+/g, ' ')).sort().join('|'))
    .sort()
}

/** True when the two STLs (paths or contents) hold the same facets. */
export function sameMesh (a: string | Buffer, b: string | Buffer): boolean {
  const x = typeof a === 'string' ? readFileSync(a) : a
  const y = typeof b === 'string' ? readFileSync(b) : b
  if (x.equals(y)) return true
  const fx = facets(x)
  const fy = facets(y)
  return fx !== null && fy !== null && fx.length === fy.length && fx.every((f, i) => f === fy[i])
}
