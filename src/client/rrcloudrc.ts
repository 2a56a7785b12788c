import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseServer, type Server } from './address.js'
import { usage } from './errors.js'

/** What the rrcloudrc files say: servers for every service, servers per service, a token. */
export interface Rrcloudrc {
  servers?: Server[]
  services: Record<string, Server[]>
  token?: string
  /** the files that were read, most important first */
  files: string[]
}

/** Where rrcloudrc is looked for, as in the seed: here, then home, then system-wide. */
export const rcFiles = (cwd: string, home: string) => [join(cwd, 'rrcloudrc'), join(home, '.rrcloudrc'), '/etc/rrcloudrc']

const KEYS = '"servers = host[:port],...", "SERVICE.servers = ..." or "token = ..."'

/** Parses one rrcloudrc: `key = value` lines, `#` starts a comment (seed format). */
export function parseRrcloudrc (text: string, file: string): Omit<Rrcloudrc, 'files'> {
  const rc: Omit<Rrcloudrc, 'files'> = { services: {} }
  text.split(/\r?\n/).forEach((raw, i) => {
    const where = `${file}:${i + 1}`
    const line = raw.replace(/(^|\s)#.*$/, '').trim()
    if (line === '') return
    const m = /^([a-z0-9_.-]+)\s*=\s*(.*)$/i.exec(line)
    if (!m) throw usage(`${where}: expected ${KEYS}, got "${raw.trim()}"`)
    const [, key, value] = m
    if (key === 'token') {
      if (!value) throw usage(`${where}: token is empty`)
      rc.token = value
      return
    }
    const svc = /^(?:([a-z0-9][a-z0-9_-]*)\.)?servers$/i.exec(key)
    if (!svc) throw usage(`${where}: unknown key "${key}": expected ${KEYS}`)
    const specs = value.split(',').map((x) => x.trim()).filter(Boolean)
    if (specs.length === 0) throw usage(`${where}: ${key} lists no server`)
    const servers = specs.map((spec) => {
      const s = parseServer(spec)
      if (!s) throw usage(`${where}: "${spec}" is not a server: write host, host:port or [ipv6]:port`)
      return s
    })
    if (svc[1]) rc.services[svc[1].toLowerCase()] = servers
    else rc.servers = servers
  })
  return rc
}

/** Reads the files that exist; a key in an earlier file wins over the same key in a later one. */
export function readRrcloudrc (files: string[]): Rrcloudrc {
  const out: Rrcloudrc = { services: {}, files: [] }
  for (const file of [...files].reverse()) {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT' || code === 'ENOTDIR') continue
      throw usage(`${file}: cannot read it (${code ?? (err as Error).message})`)
    }
    const rc = parseRrcloudrc(text, file)
    if (rc.servers) out.servers = rc.servers
    if (rc.token) out.token = rc.token
    Object.assign(out.services, rc.services)
    out.files.unshift(file)
  }
  return out
}
