import { homeDir } from './home.js'
import { parseServer, type Server } from './address.js'
import { usage } from './errors.js'
import { rcFiles, readRrcloudrc, type Rrcloudrc } from './rrcloudrc.js'

export type { Server }

/** Where tasks may go: an ordered list of nodes to try, best first (src/client/lan.ts). */
export interface ServerSource {
  /** nodes for a service, best first; without a service: nodes for listing and task look-ups */
  candidates (service?: string): Promise<Server[]>
  /** where the list came from, for messages ("--s", "rrcloudrc (FILES)", "the node on this machine") */
  origin (service?: string): string
}

export interface NamedOptions {
  /** --s=HOST[:PORT] */
  server?: string
  /** rrcloudrc already read (else read from cwd, home and /etc) */
  rc?: Rrcloudrc
  cwd?: string
  home?: string
}

/** The nodes the user named, as the seed took them: --s, else rrcloudrc (SERVICE.servers, then servers). */
export interface NamedServers {
  /** for a service; without one, every node named (for listings and task look-ups) */
  servers (service?: string): Server[]
  /** where they were named ('' when nowhere) */
  origin (service?: string): string
}

/** The nodes named with --s or in rrcloudrc; they join those found on the LAN (src/client/lan.ts). */
export function staticServers (o: NamedOptions = {}): NamedServers {
  let forced: Server | undefined
  if (o.server !== undefined) {
    forced = parseServer(o.server)
    if (!forced) throw usage(`--s=${o.server}: not a server; write --s=HOST, --s=HOST:PORT or --s=[IPv6]:PORT`)
  }
  const rc = forced ? undefined : (o.rc ?? readRrcloudrc(rcFiles(o.cwd ?? process.cwd(), o.home ?? homeDir())))
  const pick = (service?: string): [Server[], string] => {
    if (forced) return [[forced], '--s']
    const key = service?.toLowerCase()
    if (key && rc?.services[key]) return [rc.services[key], `${key}.servers in rrcloudrc (${rc.files.join(', ')})`]
    const all = key ? (rc?.servers ?? []) : [...(rc?.servers ?? []), ...Object.values(rc?.services ?? {}).flat()]
    const unique = all.filter((s, i) => all.findIndex((x) => x.url === s.url) === i)
    return unique.length ? [unique, `rrcloudrc (${rc!.files.join(', ')})`] : [[], '']
  }
  return {
    servers: (service) => pick(service)[0],
    origin: (service) => pick(service)[1],
  }
}
