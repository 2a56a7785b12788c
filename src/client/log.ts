import { createRequire } from 'node:module'

/** A diagnostic logger of the `debug` package (`DEBUG=rrcloud:*`). */
export type Log = (format: string, ...args: unknown[]) => void

const off: Log = () => {}

/**
 * `debug(namespace)`, loaded only when DEBUG is set: the package and the terminal checks it makes
 * when loaded would cost a short `SERVICE.cloud` run more than some of its requests.
 */
export function debugLog (namespace: string): Log {
  if (!process.env.DEBUG) return off
  const debug = createRequire(import.meta.url)('debug') as (ns: string) => Log
  return debug(namespace)
}
