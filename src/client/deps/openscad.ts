import { delimiter, isAbsolute, join, posix, sep } from 'node:path'
import { beside, Crawl, isFile, keyOf, type Found, type Item } from './crawl.js'
import { callArgs, lex, source, type Token } from './lex.js'

/** OpenSCAD's own library folder: the node has it too, so what is found only there is not sent. */
export const BUILTIN_LIBRARIES = '/usr/share/openscad/libraries'

/** The calls that read a file, and whether their first positional argument is that file. */
const READERS: Record<string, 'first' | 'named' | 'string'> = {
  import: 'first',
  surface: 'first',
  dxf_linear_extrude: 'first',
  dxf_rotate_extrude: 'first',
  dxf_dim: 'named', // openscad 2021: "dxf_dim(..., =...) is not supported" for a positional file
  dxf_cross: 'named',
  // the first positional argument is the height, unless it is a string: then it is the file
  linear_extrude: 'string',
  rotate_extrude: 'string',
}

/**
 * The file a parse started from: the main input or a `use`d file. `include` pastes text, so an
 * included file's calls belong to the parse of the file that included it.
 */
interface State { root: Found }

export interface ScadOptions { env: NodeJS.ProcessEnv; home: string }

/** The library folders, in OpenSCAD's order: OPENSCADPATH's entries, then the user's. */
export function libraryFolders (o: ScadOptions): string[] {
  const fromEnv = (o.env.OPENSCADPATH ?? '').split(delimiter).filter((d) => d !== '')
  return [...fromEnv, join(o.home, '.local', 'share', 'OpenSCAD', 'libraries')]
}

/** Follows `include`, `use` and the calls that read data files, from one .scad main input. */
export function scanOpenscad (mains: Found[], o: ScadOptions): Crawl<State> {
  const crawl = new Crawl<State>((s) => (s ? keyOf(s.root) : ''))
  const libs = libraryFolders(o)
  for (const m of mains) crawl.add(m, undefined, true, { root: m }, true)
  crawl.run((item, text) => {
    const toks = lex(text, { angle: true })
    for (let k = 0; k < toks.length; k++) {
      const t = toks[k]
      if (t.t === 'angle') library(item, toks[k - 1].v as 'include' | 'use', t)
      else if (t.t === 'id' && READERS[t.v] && toks[k + 1]?.v === '(' && toks[k - 1]?.v !== '.') {
        const { args, end } = callArgs(toks, k + 1)
        reader(item, t, args)
        k = end
      }
    }
  })
  return crawl

  /** `include <f>`/`use <f>`: beside the file that says it, then in the library folders. */
  function library (item: Item<State>, kind: 'include' | 'use', t: Token) {
    const name = t.v.trim()
    if (name === '') return
    if (isAbsolute(name)) return crawl.note(item.file, t.line, `${kind} <${name}>: an absolute path, which the node does not have; use a library folder (OPENSCADPATH)`)
    const state = (f: Found): State => (kind === 'use' ? { root: f } : item.state!)
    const near = beside(item.file, name, !mains.includes(item.file))
    if (near && isFile(near.path)) return crawl.add(near, item, true, state(near))
    const lib = posix.normalize(name.split(sep).join('/'))
    for (const dir of lib.startsWith('../') ? [] : libs) {
      const path = join(dir, name)
      if (isFile(path)) return crawl.add({ path, lib }, item, true, state({ path, lib }))
    }
    if (isFile(join(BUILTIN_LIBRARIES, name))) return
    crawl.note(item.file, t.line, `${kind} <${name}>: not found`)
  }

  /** A call that reads a data file: follow a string literal, report anything else. */
  function reader (item: Item<State>, t: Token, args: Token[][]) {
    const isNamed = (a: Token[]) => a[0].t === 'id' && a[1]?.v === '='
    const named = args.find((a) => isNamed(a) && a[0].v === 'file')?.slice(2)
    const first = args.find((a) => !isNamed(a))
    const how = READERS[t.v]
    const arg = named ?? (how === 'first' || (how === 'string' && first?.length === 1 && first[0].t === 'str') ? first : undefined)
    if (!arg) return
    const call = `${t.v}(${source(arg)})`
    if (arg.length !== 1 || arg[0].t !== 'str') return crawl.note(item.file, t.line, `${call}: a computed file name, which cannot be followed; send the file with --with`)
    data(item, arg[0].v, call, t.line)
  }

  /**
   * A data file, resolved as OpenSCAD does. 2021.01 looks beside the file the parse started from
   * (the includer's, for an included file), then beside the main input; later releases look beside
   * the file that makes the call. Every one of those that exists is sent. A file reached through a
   * link is read from the link's target folder, except the main input (checked with 2021.01).
   */
  function data (item: Item<State>, name: string, call: string, line: number) {
    if (name === '') return
    if (isAbsolute(name)) return crawl.note(item.file, line, `${call}: an absolute path, which the node does not have; use a relative name`)
    const seen = new Set<string>()
    for (const from of [item.file, item.state!.root, ...mains.slice(0, 1)]) {
      const f = beside(from, name, !mains.includes(from))
      if (!f || seen.has(keyOf(f)) || !isFile(f.path)) continue
      seen.add(keyOf(f))
      crawl.add(f, item, false)
    }
    if (seen.size === 0) crawl.note(item.file, line, `${call}: not found`)
  }
}
