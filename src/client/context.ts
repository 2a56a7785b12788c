import { homedir } from 'node:os'
import { readRrcloudrc, rcFiles, type Rrcloudrc } from './rrcloudrc.js'
import { staticServers, type ServerSource } from './servers.js'

export interface ClientOptions { server?: string; token?: string }

/** Everything a command needs to reach nodes: where, and with which token. */
export interface ClientContext {
  source: ServerSource
  token?: string
  rc: Rrcloudrc
}

export function clientContext (o: ClientOptions, env = process.env, cwd = process.cwd(), home = env.HOME || homedir()): ClientContext {
  const rc = readRrcloudrc(rcFiles(cwd, home))
  return {
    source: staticServers({ server: o.server, rc }),
    token: o.token || env.RRCLOUD_TOKEN || rc.token,
    rc,
  }
}
