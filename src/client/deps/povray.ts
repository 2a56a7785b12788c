import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { Crawl, isFile, shown, within, type Found, type Item } from './crawl.js'
import { lex, type Token } from './lex.js'

/*
 * Where POV-Ray looks (checked with POV-Ray 3.7.0.10, `povray -D +FN +Iscenes/scene.pov` run from
 * the folder above `scenes/`): every relative name, in `#include` as in `image_map` or `ttf`, is
 * taken from the current directory, then from the Library_Path folders; never from the scene's
 * folder nor from the including file's folder. An `#include "local.inc"` beside
 * `scenes/scene.pov` is not found from there ("Cannot open include file local.inc."), and one
 * in `scenes/incs/a.inc` that includes "nested.inc" finds `./nested.inc`, not `incs/nested.inc`.
 * A name without its extension also finds the file with it: `.inc` for `#include`, the image
 * type's for a map, `.ttf` for a font.
 *
 * The node runs povray in the task folder's root: the project's root is therefore the folder
 * povray would run in here, the current directory (or the scene's folder if the scene is not
 * below it), and a name that leads out of it cannot be sent.
 */

/** The keywords whose block gives an image (or density) file: `image_map { png "x.png" }`. */
const MAPS = new Set(['image_map', 'bump_map', 'material_map', 'height_field', 'image_pattern', 'density_file'])

/** The file types a map can name, and the extensions POV-Ray appends to a name that has none. */
const TYPES: Record<string, string[]> = {
  png: ['.png'], jpeg: ['.jpg', '.jpeg'], gif: ['.gif'], tga: ['.tga'], iff: ['.iff'], ppm: ['.ppm'], pgm: ['.pgm'],
  tiff: ['.tif', '.tiff'], exr: ['.exr'], hdr: ['.hdr'], bmp: ['.bmp'], sys: [], df3: ['.df3'],
}

/** The folder the project is laid out from: where povray runs, here and on the node. */
export function povrayBase (mains: Found[]): string {
  const cwd = process.cwd()
  const main = mains[0]?.path
  return !main || within(cwd, main) ? cwd : dirname(main)
}

/** The Library_Path folders of the system's povray.ini (the node has them too): what is there is not sent. */
function systemLibraries (): string[] {
  const dirs = ['/usr/share/povray-3.7/include']
  const etc = '/etc/povray'
  if (!existsSync(etc)) return dirs
  for (const v of readdirSync(etc)) {
    try {
      const ini = readFileSync(join(etc, v, 'povray.ini'), 'utf8')
      for (const m of ini.matchAll(/^\s*Library_Path\s*=\s*"?([^"\r\n;]+)"?/gim)) dirs.push(m[1].trim())
    } catch { /* no povray.ini for that version */ }
  }
  return dirs
}

/** Follows `#include`, image and density maps, height fields, fonts and `#fopen … read` from a scene. */
export function scanPovray (mains: Found[], base: string): Crawl {
  const crawl = new Crawl()
  const system = systemLibraries()
  for (const m of mains) crawl.add(m, undefined, true, undefined, true)
  crawl.run((item, text) => {
    const toks = lex(text, { nested: true, directives: true })
    for (let k = 0; k < toks.length; k++) {
      const t = toks[k]
      if (t.t !== 'id') continue
      if (t.v === '#include') name(item, t, toks[k + 1], ['.inc'], true)
      else if (t.v === 'ttf') name(item, t, toks[k + 1], ['.ttf'], false)
      else if (t.v === '#fopen' && toks[k + 3]?.v === 'read') name(item, t, toks[k + 2], [], false)
      else if (MAPS.has(t.v)) {
        let j = k + 1
        if (toks[j]?.v === '{') j++
        const type = toks[j]?.t === 'id' ? TYPES[toks[j].v] : undefined
        if (type) name(item, t, toks[j + 1], type, false)
        else if (toks[j]?.t === 'str') name(item, t, toks[j], [], false)
        // otherwise a function or a pattern: no file
      }
    }
  })
  return crawl

  function name (item: Item, at: Token, t: Token | undefined, exts: string[], parse: boolean) {
    const what = `${at.v} ${t?.t === 'str' ? JSON.stringify(t.v) : t?.v ?? ''}`.trim()
    if (t?.t !== 'str') return crawl.note(item.file, at.line, `${what}: a computed file name, which cannot be followed; send the file with --with`)
    if (isAbsolute(t.v)) return crawl.note(item.file, at.line, `${what}: an absolute path, which the node does not have; use a relative one`)
    const names = [t.v, ...exts.filter((e) => !t.v.toLowerCase().endsWith(e)).map((e) => t.v + e)]
    const path = names.map((n) => resolve(base, n)).find(isFile)
    if (path && !within(base, path)) return crawl.note(item.file, at.line, `${what}: outside ${shown(base)}, where povray runs; the node cannot have it there`)
    if (path) return crawl.add({ path }, item, parse)
    if (system.some((d) => names.some((n) => isFile(join(d, n))))) return
    const near = names.map((n) => resolve(dirname(item.file.path), n)).find(isFile)
    const hint = near ? ` (povray looks in the folder it runs in, not beside the scene: run from ${shown(dirname(item.file.path)) || '.'})` : ''
    crawl.note(item.file, at.line, `${what}: not found in ${shown(base) || '.'}${hint}`)
  }
}
