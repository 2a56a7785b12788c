import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { BlockList, isIP, type LookupFunction } from 'node:net'
import { plainIp } from './access.js'

/**
 * Never notified: link-local ranges (clouds serve instance metadata and credentials at
 * 169.254.169.254 and fe80::a9fe:a9fe) and the metadata addresses outside them.
 */
const NEVER = new BlockList()
NEVER.addSubnet('169.254.0.0', 16, 'ipv4')
NEVER.addSubnet('fe80::', 10, 'ipv6')
NEVER.addAddress('100.100.100.200', 'ipv4') // Alibaba Cloud metadata
NEVER.addAddress('fd00:ec2::254', 'ipv6') // AWS metadata over IPv6

export interface NotifierConfig {
  /** the node's --allow when it is not the default: addresses outside it are not notified */
  allow?: BlockList
  /** per request, ms (default 5000) */
  timeoutMs?: number
  /** how long close() lets notifications in flight finish before it aborts them, ms (default 1000) */
  graceMs?: number
}

export interface NotifierDeps {
  log: (line: string) => void
  /** name resolution, all addresses of a name (default: dns.lookup) */
  lookup?: (host: string) => Promise<LookupAddress[]>
}

/** Calls notifier URLs, once each, on addresses it has checked. */
export interface Notifier {
  /** GETs `url` unless its host is refused (then logs why); never throws, never waits */
  notify (url: string): void
  /** why `url` may not be notified, when its host is an address (a name is checked when sent) */
  refusal (url: string): string | undefined
  close (): Promise<void>
}

const refusedKind = (ip: string, allow?: BlockList): string | undefined => {
  const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4'
  if (NEVER.check(ip, family)) return 'a link-local or cloud metadata address'
  if (allow && !allow.check(ip, family)) return "outside the node's --allow"
  return undefined
}

/** Why an address may not be notified, or undefined. */
export function refusedAddress (ip: string, allow?: BlockList): string | undefined {
  const a = plainIp(ip)
  const kind = refusedKind(a, allow)
  return kind && `${a} is ${kind}`
}

const hostOf = (url: string) => {
  try { return new URL(url).hostname.replace(/^\[(.*)\]$/, '$1') } catch { return undefined }
}

const lookupAll = (host: string) => new Promise<LookupAddress[]>((resolve, reject) =>
  dnsLookup(host, { all: true, verbatim: true }, (err, addrs) => err ? reject(err) : resolve(addrs)))

/** A URL the node will not call: why, in words a log line or a reply can carry. */
export class RefusedUrl extends Error {}

/**
 * The addresses of a URL's host, resolved once and each checked: never a link-local or cloud
 * metadata address, and inside `allow` when it is given. Throws RefusedUrl naming the first
 * refused one (a name is refused when any of its addresses is).
 */
export async function checkedAddresses (url: string, allow?: BlockList, lookup: (host: string) => Promise<LookupAddress[]> = lookupAll): Promise<LookupAddress[]> {
  const host = hostOf(url)
  if (host === undefined) throw new RefusedUrl('not a URL')
  const addrs = isIP(host) ? [{ address: host, family: isIP(host) }] : await lookup(host)
  if (addrs.length === 0) throw new Error(`${host} has no address`)
  for (const { address } of addrs) {
    const kind = refusedKind(plainIp(address), allow)
    if (kind) throw new RefusedUrl(`${isIP(host) ? `${host} is` : `${host} resolves to ${plainIp(address)},`} ${kind}`)
  }
  return addrs
}

/** A lookup for the HTTP client that answers only `addrs`, already checked: no second resolution. */
export const pinned = (addrs: LookupAddress[]): LookupFunction => (hostname, options, cb) => {
  const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family
  const list = family ? addrs.filter((a) => a.family === family) : addrs
  if (list.length === 0) return cb(Object.assign(new Error(`no IPv${family} address for ${hostname}`), { code: 'ENOTFOUND' }), '', 0)
  if (options.all) (cb as unknown as (e: null, a: LookupAddress[]) => void)(null, list)
  else cb(null, list[0].address, list[0].family)
}

export function createNotifier (config: NotifierConfig, deps: NotifierDeps): Notifier {
  const { log } = deps
  const lookup = deps.lookup ?? lookupAll
  const abort = new AbortController()
  const inFlight = new Set<Promise<void>>()
  let closed: Promise<void> | undefined

  async function send (url: string) {
    let addrs: LookupAddress[]
    try {
      addrs = await checkedAddresses(url, config.allow, lookup)
    } catch (e) {
      if (!(e instanceof RefusedUrl)) throw e
      return log(`notifier ${url} refused: ${e.message}${e.message === 'not a URL' ? '' : '; nothing sent'}`)
    }
    // got loads on the first notification: most nodes never send one, and it costs ~0.1 s at start
    const { default: got } = await import('got')
    const r = await got(url, {
      timeout: { request: config.timeoutMs ?? 5000 },
      retry: { limit: 0 },
      // a redirect would lead to an address nobody checked
      followRedirect: false,
      dnsLookup: pinned(addrs),
      signal: abort.signal,
    })
    log(`notifier ${url}: ${r.statusCode}`)
  }

  return {
    notify (url) {
      if (closed) return log(`notifier ${url} not called: the node is stopping`)
      const job = send(url).catch((e: Error) => log(`notifier ${url} failed: ${e.message}`))
        .finally(() => inFlight.delete(job))
      inFlight.add(job)
    },
    refusal (url) {
      const host = hostOf(url)
      return host && isIP(host) ? refusedAddress(host, config.allow) : undefined
    },
    close () {
      closed ??= (async () => {
        let timer: NodeJS.Timeout | undefined
        const grace = new Promise((resolve) => { timer = setTimeout(resolve, config.graceMs ?? 1000) })
        await Promise.race([Promise.all(inFlight), grace])
        clearTimeout(timer)
        abort.abort()
        await Promise.all(inFlight)
      })()
      return closed
    },
  }
}
