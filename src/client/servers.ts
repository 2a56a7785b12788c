import { homedir } from 'node:os'
import { DEFAULT_PORT, parseServer, type Server } from './address.js'
import { usage } from './errors.js'
import { rcFiles, readRrcloudrc, type Rrcloudrc } from './rrcloudrc.js'

export type { Server }

/**
 * Where tasks may go: an ordered list of nodes to try, best first. The submit path tries them in
 * order and moves on when one is unreachable or refuses. Discovery (mDNS + scheduler) replaces the
 * static source below without changing its callers.
 */
export interface ServerSource {
  /** nodes for a service, best first; without a service: nodes for listing and task look-ups */
  candidates (service?: string): Promise<Server[]>
  /** where the list came from, for messages ("--s", "rrcloudrc ./rrcloudrc", "default") */
  origin (service?: string): string
}

export const LOCAL_NODE: Server = { url: `http://127.0.0.1:${DEFAULT_PORT}`, name: `127.0.0.1:${DEFAULT_PORT}` }

export interface StaticOptions {
  /** --s=HOST[:PORT] */
  server?: string
  /** rrcloudrc already read (else read from cwd, home and /etc) */
  rc?: Rrcloudrc
  cwd?: string
  home?: string
  /** with nothing named, the node on this machine (default true) */
  fallback?: boolean
}

/**
 * The seed's way: --s, else rrcloudrc (SERVICE.servers, then servers), else the local node.
 * On a LAN these join the nodes found by discovery (src/client/lan.ts).
 */
export function staticServers (o: StaticOptions = {}): ServerSource & { candidatesNow (service?: string): Server[] } {
  let forced: Server | undefined
  if (o.server !== undefined) {
    forced = parseServer(o.server)
    if (!forced) throw usage(`--s=${o.server}: not a server; write --s=HOST, --s=HOST:PORT or --s=[IPv6]:PORT`)
  }
  const rc = forced ? undefined : (o.rc ?? readRrcloudrc(rcFiles(o.cwd ?? process.cwd(), o.home ?? homedir())))
  const pick = (service?: string): [Server[], string] => {
    if (forced) return [[forced], '--s']
    const key = service?.toLowerCase()
    if (key && rc?.services[key]) return [rc.services[key], `${key}.servers in rrcloudrc (${rc.files.join(', ')})`]
    const all = key ? (rc?.servers ?? []) : [...(rc?.servers ?? []), ...Object.values(rc?.services ?? {}).flat()]
    const unique = all.filter((s, i) => all.findIndex((x) => x.url === s.url) === i)
    if (unique.length) return [unique, `rrcloudrc (${rc!.files.join(', ')})`]
    return o.fallback === false ? [[], ''] : [[LOCAL_NODE], 'the default (this machine)']
  }
  return {
    async candidates (service) { return pick(service)[0] },
    candidatesNow: (service) => pick(service)[0],
    origin (service) { return pick(service)[1] },
  }
}
