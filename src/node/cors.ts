import type { Middleware } from 'koa'
import { isIP, type BlockList } from 'node:net'
import { isAllowed } from './access.js'
import { HttpError } from './errors.js'

export interface OriginConfig {
  /** the node's --allow: a page served from an address in these ranges is on the LAN */
  allow: BlockList
  /** --cors: more origins (`http://host:port`) or host names; `*` any origin, `null` the opaque one */
  cors?: string[]
  /** the node's own names (host name, --name): a page the node serves under them is its own */
  names?: string[]
}

/** Which web pages may use the node from a browser. */
export interface OriginPolicy {
  /** whether a page of `origin` may use the node, asked with the request's `host` (Host header) */
  allows (origin: string, host: string): boolean
}

const bare = (host: string) => host.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '').toLowerCase()

/** Throws on a --cors entry that is neither an origin nor a host name. */
export function createOriginPolicy (config: OriginConfig): OriginPolicy {
  const extra = (config.cors ?? []).map((s) => s.trim()).filter(Boolean)
  const any = extra.includes('*')
  const opaque = extra.includes('null')
  const origins = new Set<string>()
  const hosts = new Set<string>()
  for (const e of extra) {
    if (e === '*' || e === 'null') continue
    if (e.includes('://')) {
      let u: URL | undefined
      try { u = new URL(e) } catch {}
      if (!u || u.origin === 'null' || u.pathname !== '/') throw new Error(`--cors: "${e}" is not an origin; write http://host[:port], a host name, * or null`)
      origins.add(u.origin)
    } else {
      if (!/^[\w.-]+$|^\[?[0-9a-f:.]+\]?$/i.test(e)) throw new Error(`--cors: "${e}" is not a host name; write http://host[:port], a host name, * or null`)
      hosts.add(bare(e))
    }
  }
  const names = new Set((config.names ?? []).map(bare))
  /** IP literals in --allow, localhost, *.local and the --cors host names */
  const lanHost = (hostname: string) => {
    const h = bare(hostname)
    if (hosts.has(h)) return true
    if (isIP(h)) return isAllowed(config.allow, h)
    return h === 'localhost' || h.endsWith('.localhost') || h.endsWith('.local')
  }
  return {
    allows (origin, host) {
      if (origin === 'null') return opaque
      if (any) return true
      let u: URL
      try { u = new URL(origin) } catch { return false }
      if (origins.has(u.origin)) return true
      if (u.protocol !== 'http:' && u.protocol !== 'https:') return false
      if (lanHost(u.hostname)) return true
      // the node's own page, under a name that is neither an address nor .local; a page of another
      // name that resolves to the node (DNS rebinding) is same-origin too, and is refused
      return u.host === host.toLowerCase() && names.has(bare(u.hostname))
    },
  }
}

const METHODS = 'GET, POST, PUT, DELETE, OPTIONS'
const HEADERS = 'Content-Type, Authorization, X-Rrcloud-Token'

/**
 * Refuses browser requests from pages the policy does not allow, before their body is read, and
 * answers the CORS headers and preflights of the others. Requests without `Origin` (curl, scripts)
 * pass, except a browser's same-origin one (`Sec-Fetch-Site: same-origin`, sent without `Origin` on
 * GET) under a Host the policy does not allow.
 */
export function corsGuard (policy: OriginPolicy): Middleware {
  return async (ctx, next) => {
    ctx.vary('Origin')
    const origin = ctx.get('origin')
    const host = ctx.get('host')
    if (!origin) {
      if (ctx.get('sec-fetch-site') === 'same-origin' && !policy.allows(`${ctx.protocol}://${host}`, host)) {
        throw new HttpError(403, `pages under the name ${host} may not use this node: open it by its address, NAME.local or its host name, or start the node with --cors ${bare(host.replace(/:\d+$/, ''))}`)
      }
      return next()
    }
    if (!policy.allows(origin, host)) {
      throw new HttpError(403, `pages from ${origin} may not use this node: only pages served from the LAN may; start the node with --cors ${origin} to allow this one`)
    }
    ctx.set('Access-Control-Allow-Origin', origin)
    ctx.set('Access-Control-Expose-Headers', 'Location, X-Rrcloud-Max-Wait')
    if (ctx.method === 'OPTIONS' && ctx.get('access-control-request-method')) {
      ctx.set('Access-Control-Allow-Methods', METHODS)
      ctx.set('Access-Control-Allow-Headers', HEADERS)
      ctx.set('Access-Control-Max-Age', '600')
      // Chromium asks before a public page reaches a private address (Private Network Access)
      if (ctx.get('access-control-request-private-network') === 'true') ctx.set('Access-Control-Allow-Private-Network', 'true')
      ctx.status = 204
      return
    }
    await next()
  }
}
