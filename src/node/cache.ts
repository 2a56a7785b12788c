import { createHash } from 'node:crypto'
import { realpathSync, statSync } from 'node:fs'
import { isAbsolute } from 'node:path'
import { compose, type ResolvedService } from '../executors/services.js'

/** The task id in a key: no path may hold a NUL, so it is never mistaken for a name a client gave. */
export const ID_PLACEHOLDER = '\0id'

/** A file of a task folder as the key sees it. */
export interface KeyInput { name: string; sha256: string; prearg?: string }

/** The log of a task completed from the cache: made from its record when asked for, never written. */
export const hitLog = (t: { cached?: string, service: string }) =>
  `cache hit: the result of task ${t.cached} (same service, tool, command and files); ${t.service} did not run\n`

/** Whether a service's results may be taken from the cache: tools only, unless their descriptor says `cache = no`. */
export const cacheable = (s: ResolvedService) => s.kind === 'process' && s.cache && Boolean(s.exe)

/** JSON with the keys of every object sorted: one text for one value. */
export function canonical (v: unknown): string {
  if (v instanceof RegExp) return JSON.stringify(String(v))
  if (typeof v === 'number' && !Number.isFinite(v)) return JSON.stringify(String(v))
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`
  }
  return JSON.stringify(v) ?? 'null'
}

/**
 * What the tool is, cheaply: the real path, size and change time of its executable and of the
 * scripts it is given by path (jscad's cli.js). An upgrade changes them, and so every key.
 */
export function toolIdentity (s: ResolvedService): Array<Record<string, unknown>> {
  return [s.exe!, ...s.args.filter((a) => isAbsolute(a))].map((p) => {
    try {
      const real = realpathSync.native(p)
      const st = statSync(real)
      return { path: p, real, size: st.size, mtimeMs: st.mtimeMs }
    } catch {
      return { path: p, missing: true }
    }
  })
}

/**
 * The key of a task's result: the SHA-256 of its service's descriptor, its tool, its command line
 * (the task id replaced by a placeholder) and its folder (each input's name, digest and prearg in
 * order; each other file's name and digest, sorted). Inputs named after the task are named with
 * the placeholder too, so that the same work sent twice has one key.
 */
export function cacheKey (s: ResolvedService, inputs: KeyInput[], files: Array<Omit<KeyInput, 'prearg'>>): string {
  const argv = compose(s, ID_PLACEHOLDER, inputs.map((i) => ({ path: i.name, prearg: i.prearg })), '').args
  // canonical({ v: 1, descriptor, tool, argv, inputs, files }), its keys in their sorted order
  const text = `{"argv":${canonical(argv)},"descriptor":${descriptorText(s)},` +
    `"files":${canonical([...files].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0).map((f) => ({ name: f.name, sha256: f.sha256 })))},` +
    `"inputs":${canonical(inputs.map((i) => ({ name: i.name, sha256: i.sha256, prearg: i.prearg ?? '' })))},` +
    `"tool":${canonical(toolIdentity(s))},"v":1}`
  return createHash('sha256').update(text).digest('hex')
}

/** a descriptor's canonical text, made once per descriptor (a service read again is another object) */
const descriptors = new WeakMap<ResolvedService, string>()
function descriptorText (s: ResolvedService): string {
  let text = descriptors.get(s)
  if (text === undefined) {
    const { file: _file, available: _available, reason: _reason, ...descriptor } = s
    text = canonical(descriptor)
    descriptors.set(s, text)
  }
  return text
}
