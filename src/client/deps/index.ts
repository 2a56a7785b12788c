import { readdirSync, realpathSync, statSync } from 'node:fs'
import { homeDir } from '../home.js'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { usage } from '../errors.js'
import { Crawl, keyOf, shown, within, type Found, type Scan } from './crawl.js'
import { scanOpenjscad } from './openjscad.js'
import { scanOpenscad } from './openscad.js'
import { povrayBase, scanPovray } from './povray.js'
import { scanSlic3r } from './slic3r.js'

export { BUILTIN_LIBRARIES, libraryFolders } from './openscad.js'
export { LIMITS } from './crawl.js'

export interface ProjectFile {
  /** absolute, on this machine */
  path: string
  /** posix relative path in the task folder */
  rel: string
}

export interface Project {
  /** the main inputs, in the order given, with their place in the tree */
  mains: ProjectFile[]
  /** every other file the tool will read (never a main input twice), sorted by rel */
  files: ProjectFile[]
  /** references that could not be followed: a computed name, an absolute path, a file not found; one line each, for a warning */
  unresolved: string[]
}

export interface ScanOptions {
  /** files or folders the scanner cannot see, sent as well (folders recursively, without dotfiles) */
  with?: string[]
  /** for OPENSCADPATH; process.env by default */
  env?: NodeJS.ProcessEnv
  /** for the user's OpenSCAD library folder; the user's home by default */
  home?: string
}

type Scanner = (mains: Found[], o: { env: NodeJS.ProcessEnv; home: string }) => { crawl: Scan; root?: string }

const SCANNERS: Record<string, Scanner> = {
  openscad: (mains, o) => ({ crawl: scanOpenscad(mains, o) }),
  openjscad: (mains) => ({ crawl: scanOpenjscad(mains) }),
  povray: (mains) => {
    const root = povrayBase(mains)
    return { crawl: scanPovray(mains, root), root }
  },
  slic3r: () => ({ crawl: scanSlic3r() }),
}

/**
 * Finds every file `service`'s tool will read for these inputs, as that tool resolves names,
 * and gives each its place in the task folder so that the node can recreate the same tree.
 * A service without a scanner (echo, printrun…) gets its main inputs and `with` only.
 */
export function scanProject (service: string, inputs: Array<{ path: string; prearg?: string }>, opts: ScanOptions = {}): Project {
  const mains: Found[] = inputs.map((i) => ({ path: resolve(i.path) }))
  const scanner = SCANNERS[service] ?? (() => ({ crawl: new Crawl() }))
  const { crawl, root: fixed } = scanner(mains, { env: opts.env ?? process.env, home: opts.home ?? homeDir() })
  for (const w of opts.with ?? []) addWith(crawl, resolve(w), w)

  const mainKeys = new Set(mains.map(keyOf))
  let found = [...crawl.found.values()].filter((f) => !mainKeys.has(keyOf(f)))
  const inTree = (f: Found) => f.lib === undefined
  let root = fixed ?? ancestor([...mains, ...found.filter(inTree)])
  if (fixed) {
    const outside = (f: Found) => inTree(f) && !within(fixed, f.at ?? f.path)
    if (mains.some(outside)) root = ancestor([...mains, ...found.filter(inTree)])
    else {
      for (const f of found.filter(outside)) crawl.note(undefined, undefined, `${shown(f.at ?? f.path)}: outside ${shown(fixed)}, where the tool runs; not sent`)
      found = found.filter((f) => !outside(f))
    }
  }
  const place = (f: Found): ProjectFile => ({ path: f.path, rel: inTree(f) ? relative(root, f.at ?? f.path).split(sep).join('/') : `.lib/${f.lib}` })
  const placed = mains.map(place)
  const taken = new Set(placed.map((p) => p.rel))
  const files = found.map(place).filter((p) => !taken.has(p.rel)).sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0))
  return { mains: placed, files, unresolved: crawl.notes }
}

/** The deepest folder that holds every file. */
function ancestor (files: Found[]): string {
  const parts = files.map((f) => dirname(f.at ?? f.path).split(sep))
  const common = parts[0] ?? [process.cwd()]
  let n = common.length
  for (const p of parts) {
    let k = 0
    while (k < n && k < p.length && p[k] === common[k]) k++
    n = k
  }
  return common.slice(0, n).join(sep) || sep
}

/** Sends a file the scanner cannot see, or a folder's regular files, without dotfiles and dot folders. */
function addWith (crawl: Scan, path: string, given: string): void {
  let st
  try {
    st = statSync(path)
  } catch {
    throw usage(`--with ${given}: no such file or folder`)
  }
  if (!st.isDirectory()) return crawl.add({ path })
  for (const f of walk(path, new Set())) {
    crawl.add({ path: f })
    if (crawl.full) return
  }
}

function * walk (dir: string, seen: Set<string>): Generator<string> {
  const real = realpathSync(dir)
  if (seen.has(real)) return // a link back up the tree
  seen.add(real)
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith('.')) continue
    const p = join(dir, name)
    let st
    try {
      st = statSync(p)
    } catch {
      continue // a dangling link
    }
    if (st.isDirectory()) yield * walk(p, seen)
    else if (st.isFile()) yield p
  }
}
