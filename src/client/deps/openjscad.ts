import { readFileSync } from 'node:fs'
import { dirname, extname, isAbsolute, join, relative, resolve } from 'node:path'
import { beside, Crawl, isFile, type Found, type Item } from './crawl.js'
import { callArgs, lex, source, type Token } from './lex.js'

/** The files that are programs: followed. Anything else required (STL, DXF, JSON…) is data. */
const SCRIPTS = new Set(['.js', '.jscad', '.cjs', '.mjs'])

/**
 * The extensions `require` tries, in the order the jscad CLI's Node has them: Node's own, then
 * `.jscad` and the formats @jscad/io reads, which the CLI registers with `require.extensions`.
 */
const EXTENSIONS = ['.js', '.json', '.jscad', '.amf', '.dxf', '.obj', '.stl', '.svg', '.x3d', '.cjs', '.mjs']

const relativeSpec = (s: string) => s === '.' || s === '..' || s.startsWith('./') || s.startsWith('../')

/** A specifier resolved as Node's `require` does (from the real folder): the file, with an extension, or a folder's main or index. */
function resolveSpec (from: Found, spec: string): Found | undefined {
  const asFile = (p: string) => [p, ...EXTENSIONS.map((e) => p + e)].find(isFile)
  const asIndex = (p: string) => asFile(join(p, 'index'))
  const base = beside(from, spec, true)!
  let path = asFile(base.path)
  if (!path) {
    try {
      const main = JSON.parse(readFileSync(join(base.path, 'package.json'), 'utf8')).main
      if (typeof main === 'string') path = asFile(resolve(base.path, main)) ?? asIndex(resolve(base.path, main))
    } catch { /* no package.json: the folder's index */ }
  }
  path ??= asIndex(base.path)
  if (path === undefined) return undefined
  const at = resolve(dirname(base.at ?? base.path), relative(dirname(base.path), path))
  return at === path ? { path } : { path, at }
}

/** The package.json whose "type" tells Node how to read a .js file: the nearest, up to the main input's folder. */
function packageJson (script: string, top: string, crawl: Crawl): void {
  for (let dir = dirname(script); !relative(top, dir).startsWith('..'); dir = dirname(dir)) {
    const path = join(dir, 'package.json')
    if (isFile(path)) return crawl.add({ path })
    if (dir === top) return
  }
}

/** Follows relative `require`s and `import`s through a JSCAD design's scripts. */
export function scanOpenjscad (mains: Found[]): Crawl {
  const crawl = new Crawl()
  for (const m of mains) crawl.add(m, undefined, true, undefined, true)
  const top = mains[0] ? dirname(mains[0].path) : '/'
  crawl.run((item, text) => {
    if (extname(item.file.path) === '.js') packageJson(item.file.path, top, crawl)
    const toks = lex(text.replace(/^#!.*/, ''), { js: true })
    for (let k = 0; k < toks.length; k++) {
      const t = toks[k]
      if (t.t !== 'id' || toks[k - 1]?.v === '.') continue
      const next = toks[k + 1]
      if ((t.v === 'require' || t.v === 'import') && next?.v === '(') {
        const { args, end } = callArgs(toks, k + 1)
        const [arg] = args[0] ?? []
        const call = `${t.v}(${source(args[0] ?? [])})`
        if (args[0]?.length === 1 && (arg.t === 'str' || (arg.t === 'tpl' && !arg.computed))) follow(item, arg, call)
        else if (args.length > 0) crawl.note(item.file, t.line, `${call}: a computed module name, which cannot be followed; send the file with --with`)
        k = end
      } else if ((t.v === 'import' || t.v === 'from') && next?.t === 'str') {
        follow(item, next, `${t.v} ${source([next])}`)
      }
    }
  })
  return crawl

  function follow (item: Item, spec: Token, what: string) {
    if (isAbsolute(spec.v)) return crawl.note(item.file, spec.line, `${what}: an absolute path, which the node does not have; use a relative one`)
    if (!relativeSpec(spec.v)) return // a package: the node has its own (@jscad/modeling…)
    const f = resolveSpec(item.file, spec.v)
    if (!f) return crawl.note(item.file, spec.line, `${what}: not found`)
    crawl.add(f, item, SCRIPTS.has(extname(f.path).toLowerCase()))
  }
}
