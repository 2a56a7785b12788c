import { isIP } from 'node:net'

export const DEFAULT_PORT = 4468

/** A node the client can talk to: its base URL and the name the user gave it. */
export interface Server { url: string; name: string }

const HOST = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*\.?$/i

/** Only an IPv6 address has two colons; asking node:net first would cost every run ~5 ms (its IPv6 pattern). */
const twoColons = (s: string) => s.indexOf(':') !== s.lastIndexOf(':')

/**
 * Reads `HOST`, `HOST:PORT`, `[IPv6]:PORT` or an `http(s)://` URL (port 4468 unless given).
 * Returns undefined for anything else, so callers can say where the bad value came from.
 */
export function parseServer (spec: string): Server | undefined {
  const s = spec.trim()
  if (/^https?:\/\//i.test(s)) {
    try {
      const u = new URL(s)
      if (u.pathname !== '/' || u.search || u.username) return undefined
      if (!u.port && !/^https?:\/\/[^/]+:\d+/i.test(s)) u.port = String(DEFAULT_PORT)
      return { url: u.origin, name: s }
    } catch { return undefined }
  }
  let host: string
  let port = DEFAULT_PORT
  const v6 = /^\[([0-9a-f:.]+)\](?::(\d+))?$/i.exec(s)
  if (v6) {
    if (isIP(v6[1]) !== 6) return undefined
    host = `[${v6[1]}]`
    if (v6[2]) port = Number(v6[2])
  } else if (twoColons(s) && isIP(s) === 6) {
    host = `[${s}]`
  } else {
    const m = /^([^:]+)(?::(\d+))?$/.exec(s)
    if (!m || !(HOST.test(m[1]) || isIP(m[1]) === 4)) return undefined
    host = m[1]
    if (m[2]) port = Number(m[2])
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined
  return { url: `http://${host}:${port}`, name: s }
}
