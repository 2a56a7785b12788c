import { readFileSync, realpathSync, statSync } from 'node:fs'
import { dirname, isAbsolute, posix, relative, resolve, sep } from 'node:path'

export const LIMITS = { files: 10_000, depth: 64, parseBytes: 16 * 1024 * 1024 }

/**
 * A file (`path`, read through any link) and its place: `at`, where it appears to be here (beside
 * the link that led to it; `path` when not given), relative to the project's root, known only at
 * the end; or, for a file found in an OpenSCAD library folder, `lib`: its posix path under `.lib/`.
 */
export interface Found { path: string; at?: string; lib?: string }

/** A file waiting to be read, with what its scanner needs to know about how it was reached. */
export interface Item<S = unknown> { file: Found; depth: number; parse: boolean; state?: S }

/** Where a file's references point, as its tool resolves them; calls back into the crawl. */
export type Visit<S> = (item: Item<S>, text: string, crawl: Crawl<S>) => void

export const keyOf = (f: Found) => (f.lib === undefined ? f.at ?? f.path : `.lib/${f.lib}`)

/** A regular file (through a symbolic link too). */
export function isFile (path: string): boolean {
  try {
    return statSync(path).isFile()
  } catch {
    return false
  }
}

/** Whether `path` is `dir` or below it. */
export function within (dir: string, path: string): boolean {
  const r = relative(dir, path)
  return r !== '..' && !r.startsWith(`..${sep}`) && !isAbsolute(r)
}

/** How a path is shown in a warning: as the user would type it from here. */
export function shown (path: string): string {
  return within(process.cwd(), path) && path !== process.cwd() ? relative(process.cwd(), path) : path
}

const realDir = (path: string) => {
  try {
    return dirname(realpathSync(path))
  } catch {
    return dirname(path)
  }
}

/**
 * `name`, written in `from`: read from `from`'s folder, or from its target's when `real` (a tool
 * that resolves links: Node, OpenSCAD for included files), and placed beside `from`'s own place,
 * so that the tool finds it there on the node. Beside a `.lib/` file it stays in `.lib/`.
 */
export function beside (from: Found, name: string, real = false): Found | undefined {
  const dir = real ? realDir(from.path) : dirname(from.path)
  const path = resolve(dir, name)
  if (from.lib === undefined) {
    const at = resolve(dirname(from.at ?? from.path), relative(dir, path))
    return at === path ? { path } : { path, at }
  }
  const lib = posix.normalize(posix.join(posix.dirname(from.lib), relative(dir, path).split(sep).join('/')))
  return lib.startsWith('../') || lib === '..' ? undefined : { path, lib }
}

/** What a scan leaves: the files found (by place) and the lines for the warning. */
export interface Scan {
  readonly found: Map<string, Found>
  readonly notes: string[]
  /** the file limit was reached */
  readonly full: boolean
  note (file: Found | undefined, line: number | undefined, text: string): void
  /** lists a file that is sent, not read */
  add (file: Found): void
}

/**
 * Follows references breadth first from the main inputs: each file is listed once (by its place),
 * read once per state, within the limits on count, depth and size.
 */
export class Crawl<S = unknown> implements Scan {
  readonly found = new Map<string, Found>()
  readonly notes: string[] = []
  private readonly read = new Set<string>()
  private readonly queue: Item<S>[] = []
  full = false
  private deep = false

  constructor (private readonly stateKey: (s: S | undefined) => string = () => '') {}

  /** A line for the warning, about a place in a file. */
  note (file: Found | undefined, line: number | undefined, text: string): void {
    const at = file ? `${shown(file.path)}${line ? `:${line}` : ''}: ` : ''
    this.notes.push(at + text)
  }

  /** Lists a file (a main input: `main`, never counted in `found`) and queues it for reading. */
  add (file: Found, from?: Item<S>, parse = false, state?: S, main = false): void {
    const depth = from ? from.depth + 1 : 0
    if (from && depth > LIMITS.depth) {
      if (!this.deep) this.note(from.file, undefined, `references deeper than ${LIMITS.depth} levels were not followed`)
      this.deep = true
      return
    }
    const key = keyOf(file)
    if (!main && !this.found.has(key)) {
      if (this.found.size >= LIMITS.files) {
        if (!this.full) this.note(undefined, undefined, `more than ${LIMITS.files} files: the rest were left out`)
        this.full = true
        return
      }
      this.found.set(key, file)
    }
    if (parse) this.queue.push({ file, depth, parse, state })
  }

  /** Reads every queued file (small enough to parse) and lets `visit` add what it references. */
  run (visit: Visit<S>): void {
    for (let item = this.queue.shift(); item; item = this.queue.shift()) {
      const k = `${keyOf(item.file)}\0${this.stateKey(item.state)}`
      if (this.read.has(k)) continue
      this.read.add(k)
      let text: string
      try {
        if (statSync(item.file.path).size > LIMITS.parseBytes) continue
        text = readFileSync(item.file.path, 'utf8')
      } catch (err) {
        this.note(item.file, undefined, `cannot be read (${(err as NodeJS.ErrnoException).code ?? err})`)
        continue
      }
      visit(item, text, this)
    }
  }
}
