import { readRrcloudrc, rcFiles, type Rrcloudrc } from './rrcloudrc.js'
import { parseServer } from './address.js'
import { usage } from './errors.js'
import { staticServers } from './servers.js'
import { createLanSource, type LanSource } from './lan.js'
import { homeDir } from './home.js'

export interface ClientOptions {
  server?: string
  token?: string
  /** interface (name or IPv4) to look for nodes on */
  interface?: string
}

/** Everything a command needs to reach nodes: where, and with which token. */
export interface ClientContext {
  source: LanSource
  token?: string
  rc: Rrcloudrc
}

/**
 * Nodes come from the LAN (a node on this machine, else mDNS), joined by those named with --s or
 * in rrcloudrc. RRCLOUD_MDNS=off keeps the client off mDNS; RRCLOUD_INTERFACE picks the interface;
 * RRCLOUD_LOCAL=HOST:PORT says where this machine's node listens (`off`: do not look for one).
 */
export function clientContext (o: ClientOptions, env = process.env, cwd = process.cwd(), home = homeDir(env)): ClientContext {
  const files = rcFiles(cwd, home)
  const rc = readRrcloudrc(files)
  const named = staticServers({ server: o.server, rc })
  const token = o.token || env.RRCLOUD_TOKEN || rc.token
  let local
  if (env.RRCLOUD_LOCAL) {
    local = /^(off|0|no|false)$/i.test(env.RRCLOUD_LOCAL) ? false as const : parseServer(env.RRCLOUD_LOCAL)
    if (local === undefined) throw usage(`RRCLOUD_LOCAL=${env.RRCLOUD_LOCAL}: not a node address; write HOST:PORT, or off`)
  }
  return {
    source: createLanSource({
      statics: (service) => named.servers(service),
      staticOrigin: (service) => named.origin(service),
      unnamed: `no --s, ${rc.files.length ? `no servers for it in rrcloudrc (${rc.files.join(', ')})` : `no rrcloudrc (${files.join(', ')})`}`,
      token,
      local,
      interface: o.interface || env.RRCLOUD_INTERFACE || undefined,
    }),
    token,
    rc,
  }
}
