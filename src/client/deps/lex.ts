/**
 * A small tokenizer shared by the scanners: it knows just enough of each language (comments,
 * string literals) to tell a reference in code from the same words in a comment or a string.
 */

export interface Token {
  /** id: a name (with its leading `#` for a POV-Ray directive); str: a string literal; angle: OpenSCAD's `<file>`; tpl: a JS template literal; num: a number; p: any other character */
  t: 'id' | 'str' | 'angle' | 'tpl' | 'num' | 'p'
  /** the name, the string's value, or the character */
  v: string
  line: number
  /** a template literal with a `${}` in it */
  computed?: boolean
}

export interface Dialect {
  /** block comments nest (POV-Ray) */
  nested?: boolean
  /** `#name` is one token (POV-Ray directives) */
  directives?: boolean
  /** `include <f>` and `use <f>` (OpenSCAD) */
  angle?: boolean
  /** single quotes, template literals and regular expressions (JavaScript) */
  js?: boolean
}

const idStart = /[A-Za-z_$]/
const idChar = /[A-Za-z0-9_$]/
const ESC: Record<string, string> = { n: '\n', t: '\t', r: '\r' }
// after these, a `/` starts a regular expression rather than a division
const BEFORE_REGEX = new Set(['return', 'typeof', 'case', 'do', 'else', 'in', 'of', 'new', 'delete', 'void', 'throw', 'yield', 'await'])

/** Splits source text into tokens, dropping comments and white space. */
export function lex (src: string, d: Dialect): Token[] {
  const out: Token[] = []
  let i = 0
  let line = 1
  const push = (t: Token['t'], v: string, at = line, computed?: boolean) => out.push(computed ? { t, v, line: at, computed } : { t, v, line: at })
  const count = (from: number, to: number) => { for (let k = from; k < to; k++) if (src[k] === '\n') line++ }

  /** Reads a quoted literal starting at i (on the quote); returns its value. */
  const quoted = (q: string): string => {
    let v = ''
    for (i++; i < src.length && src[i] !== q; i++) {
      if (src[i] === '\\' && i + 1 < src.length) {
        i++
        if (src[i] === '\n') line++
        v += ESC[src[i]] ?? src[i]
        continue
      }
      if (src[i] === '\n') {
        if (d.js) return v // an unterminated JS string ends at the line
        line++
      }
      v += src[i]
    }
    i++
    return v
  }

  /** Skips a template literal's text and `${}` parts; says whether it had any. */
  const template = (): { v: string; computed: boolean } => {
    let v = ''
    let computed = false
    i++
    while (i < src.length && src[i] !== '`') {
      if (src[i] === '\\') {
        if (src[i + 1] === '\n') line++
        v += src[i + 1] ?? ''
        i += 2
        continue
      }
      if (src[i] === '$' && src[i + 1] === '{') {
        computed = true
        let depth = 0
        for (; i < src.length; i++) {
          if (src[i] === '{') depth++
          else if (src[i] === '}' && --depth === 0) break
          else if (src[i] === '\n') line++
        }
        i++
        continue
      }
      if (src[i] === '\n') line++
      v += src[i++]
    }
    i++
    return { v, computed }
  }

  const regexAllowed = () => {
    const prev = out[out.length - 1]
    if (!prev) return true
    if (prev.t === 'id') return BEFORE_REGEX.has(prev.v)
    if (prev.t === 'p') return !')]}'.includes(prev.v)
    return false
  }

  while (i < src.length) {
    const c = src[i]
    const n = src[i + 1]
    if (c === '\n') { line++; i++; continue }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\f') { i++; continue }
    if (c === '/' && n === '/') { while (i < src.length && src[i] !== '\n') i++; continue }
    if (c === '/' && n === '*') {
      let depth = 0
      for (; i < src.length; i++) {
        if (src[i] === '/' && src[i + 1] === '*') { depth++; i++ } else if (src[i] === '*' && src[i + 1] === '/') {
          i++
          if (!d.nested || --depth === 0) { i++; break }
        } else if (src[i] === '\n') line++
      }
      continue
    }
    const at = line
    if (c === '"' || (d.js && c === "'")) { push('str', quoted(c), at); continue }
    if (d.js && c === '`') { const t = template(); push('tpl', t.v, at, t.computed); continue }
    if (d.js && c === '/' && regexAllowed()) {
      let cls = false
      for (i++; i < src.length && src[i] !== '\n'; i++) {
        if (src[i] === '\\') i++
        else if (src[i] === '[') cls = true
        else if (src[i] === ']') cls = false
        else if (src[i] === '/' && !cls) break
      }
      i++
      while (i < src.length && idChar.test(src[i])) i++
      push('p', '/', at) // stands for the whole regular expression
      continue
    }
    if (idStart.test(c) || (d.directives && c === '#')) {
      const s = i
      i++
      if (c === '#') while (src[i] === ' ' || src[i] === '\t') i++
      while (i < src.length && idChar.test(src[i])) i++
      const v = src.slice(s, i).replace(/^#[ \t]+/, '#')
      push('id', v, at)
      if (d.angle && (v === 'include' || v === 'use')) angle()
      continue
    }
    if (/[0-9]/.test(c)) {
      const s = i
      while (i < src.length && /[0-9A-Za-z_.]/.test(src[i])) i++
      push('num', src.slice(s, i), at)
      continue
    }
    push('p', c, at)
    i++
  }
  return out

  /** OpenSCAD reads `include <file>` as one token: the name ends at `>` and may not span lines. */
  function angle () {
    let k = i
    while (src[k] === ' ' || src[k] === '\t' || src[k] === '\r' || src[k] === '\n') k++
    if (src[k] !== '<') return
    const end = src.slice(k + 1).search(/[>\n\t\r]/)
    if (end < 0 || src[k + 1 + end] !== '>') return
    const at = line
    count(i, k)
    push('angle', src.slice(k + 1, k + 1 + end), at)
    i = k + 2 + end
  }
}

/** The tokens of a call's arguments, `(` at open, split at top-level commas; and where it ends. */
export function callArgs (toks: Token[], open: number): { args: Token[][]; end: number } {
  const args: Token[][] = [[]]
  let depth = 0
  let k = open
  for (; k < toks.length; k++) {
    const v = toks[k].t === 'p' ? toks[k].v : ''
    if (v === '(' || v === '[' || v === '{') { if (depth++ === 0) continue }
    if (v === ')' || v === ']' || v === '}') { if (--depth === 0) break }
    if (depth === 1 && v === ',') { args.push([]); continue }
    args[args.length - 1].push(toks[k])
  }
  return { args: args.filter((a) => a.length > 0), end: k }
}

/** Tokens written back as code, for a warning: `str("a", x)`. */
export const source = (toks: Token[]) => toks.map((t) => (t.t === 'str' ? JSON.stringify(t.v) : t.t === 'tpl' ? `\`${t.v}\`` : t.t === 'angle' ? `<${t.v}>` : t.v)).join('')
