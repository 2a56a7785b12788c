// The one place that touches bonjour-service. We use its multicast-dns socket and its responder
// (Server: answers queries from a registry of records) and build every record ourselves; see
// advertiser.ts for why its publish() is not used.
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os'
import { isIPv4 } from 'node:net'
import Bonjour from 'bonjour-service'

export interface SrvData { port: number, target: string, priority?: number, weight?: number }

export interface MdnsRecord {
  name: string
  type: string
  ttl?: number
  /** the cache-flush bit: "this is the whole set of this name and type" */
  flush?: boolean
  data: unknown
}

export interface Question { name: string, type: string }

export interface MdnsPacket {
  type: 'query' | 'response'
  questions: Question[]
  answers: MdnsRecord[]
  additionals: MdnsRecord[]
  authorities: MdnsRecord[]
}

export interface Rinfo { address: string, port: number }

export interface Iface {
  name: string
  /** the IPv4 address multicast is joined and sent on */
  address: string
  infos: NetworkInterfaceInfo[]
}

/** Finds an interface by name or by one of its IPv4 addresses; throws a message a user can act on. */
export function resolveInterface (spec: string): Iface {
  const all = networkInterfaces()
  for (const [name, infos = []] of Object.entries(all)) {
    const v4 = infos.find((i) => i.family === 'IPv4')
    if (name === spec || infos.some((i) => i.address === spec)) {
      const address = isIPv4(spec) ? spec : v4?.address
      if (!address) throw new Error(`interface ${spec} has no IPv4 address; mDNS runs over IPv4`)
      return { name, address, infos }
    }
  }
  throw new Error(`no interface named or addressed ${spec} (have: ${Object.keys(all).join(', ')})`)
}

const linkLocal6 = (a: string): boolean => /^fe[89ab]/i.test(a)

/**
 * Addresses to publish for our host name: those of the pinned interface, or of every external one.
 * IPv6 link-local addresses are left out: without a scope they are useless to a client.
 */
export function advertisedAddresses (iface?: Iface): { v4: string[], v6: string[] } {
  const infos = iface ? iface.infos : Object.values(networkInterfaces()).flat().filter((i): i is NetworkInterfaceInfo => Boolean(i) && !i!.internal)
  return {
    v4: infos.filter((i) => i.family === 'IPv4').map((i) => i.address),
    v6: infos.filter((i) => i.family === 'IPv6' && !linkLocal6(i.address)).map((i) => i.address),
  }
}

/** Every address of this machine (all interfaces, link-local too). */
export function machineAddresses (): Set<string> {
  return new Set(Object.values(networkInterfaces()).flat().map((i) => i?.address).filter((a): a is string => Boolean(a)))
}

function v4int (a: string): number {
  return a.split('.').reduce((n, p) => (n * 256) + Number(p), 0)
}

/** True when an IPv4 source address is on one of the interface's subnets. */
export function onLink (iface: Iface, address: string): boolean {
  if (!isIPv4(address)) return true
  return iface.infos.some((i) => i.family === 'IPv4' &&
    (v4int(i.address) & v4int(i.netmask)) >>> 0 === (v4int(address) & v4int(i.netmask)) >>> 0)
}

export interface Mdns {
  /** resolves once the socket is bound and has joined the group; rejects if it cannot */
  ready: Promise<void>
  /** `authorities`: the records a probe proposes (RFC 6762 §8.2), so that simultaneous probers can tell who wins */
  query (questions: Question[], authorities?: MdnsRecord[]): Promise<void>
  respond (answers: MdnsRecord[], additionals?: MdnsRecord[]): Promise<void>
  /** the responder answers queries with these records from now on */
  serve (records: MdnsRecord[]): void
  /** stop answering for these records' names and types */
  unserve (records: MdnsRecord[]): void
  /** packets from off-link sources are dropped when an interface is pinned */
  onResponse (fn: (packet: MdnsPacket, rinfo: Rinfo) => void): () => void
  onQuery (fn: (packet: MdnsPacket, rinfo: Rinfo) => void): () => void
  close (): Promise<void>
}

// what we use of bonjour-service's untyped internals
interface MulticastDns {
  on (event: string, fn: (...args: any[]) => void): void
  removeListener (event: string, fn: (...args: any[]) => void): void
  query (q: { questions: Question[], authorities?: MdnsRecord[] }, cb: (err?: Error | null) => void): void
  respond (r: { answers: MdnsRecord[], additionals: MdnsRecord[] }, cb: (err?: Error | null) => void): void
}
interface BonjourServer {
  mdns: MulticastDns
  register (records: MdnsRecord[]): void
  unregister (records: MdnsRecord[]): void
}

/**
 * Opens the mDNS socket on UDP 5353. With an interface, multicast is joined and sent on its
 * address while the socket binds 0.0.0.0: a socket bound to the unicast address would never
 * receive the queries, which are sent to 224.0.0.251.
 */
export function openMdns (iface: Iface | undefined, log: (msg: string) => void): Mdns {
  const opts = iface ? { interface: iface.address, bind: '0.0.0.0' } : {}
  // respond() errors of the responder land here instead of being thrown
  const bonjour = new Bonjour(opts as object, (err: Error) => log(`mdns: ${err.message}`))
  const server = (bonjour as unknown as { server: BonjourServer }).server
  const mdns = server.mdns
  let closed = false
  const ready = new Promise<void>((resolve, reject) => {
    mdns.on('ready', resolve)
    // multicast-dns emits 'error' for EACCES/EADDRINUSE (an unhandled one would crash the process)
    // (the same bind error may come twice: from bind's callback and from the socket)
    let last = ''
    mdns.on('error', (err: Error) => {
      if (err.message !== last) log(`mdns socket: ${err.message}`)
      last = err.message
      reject(err)
    })
  })
  ready.catch(() => {})
  mdns.on('warning', (err: Error) => log(`mdns warning: ${err.message}`))
  const listen = (event: string, fn: (packet: MdnsPacket, rinfo: Rinfo) => void): () => void => {
    const listener = (packet: MdnsPacket, rinfo: Rinfo): void => {
      // bound to 0.0.0.0, the socket also hears groups joined on other interfaces
      if (iface && !onLink(iface, rinfo.address)) return
      try { fn(packet, rinfo) } catch (e) { log(`mdns: bad packet from ${rinfo.address}: ${(e as Error).message}`) }
    }
    mdns.on(event, listener)
    return () => mdns.removeListener(event, listener)
  }
  const cb = (resolve: () => void, reject: (e: Error) => void) => (err?: Error | null) => err ? reject(err) : resolve()
  return {
    ready,
    query: (questions, authorities) => new Promise((resolve, reject) => {
      if (closed) return resolve()
      mdns.query(authorities?.length ? { questions, authorities } : { questions }, cb(resolve, reject))
    }),
    respond: (answers, additionals = []) => new Promise((resolve, reject) => {
      if (closed) return resolve()
      mdns.respond({ answers, additionals }, cb(resolve, reject))
    }),
    serve: (records) => server.register(records),
    unserve (records) {
      // bonjour's unregister drops every record of the same type and name
      server.unregister(records)
    },
    onResponse: (fn) => listen('response', fn),
    onQuery: (fn) => listen('query', fn),
    close () {
      if (closed) return Promise.resolve()
      closed = true
      return new Promise((resolve) => {
        // closing a socket that never bound throws instead of calling back
        try { bonjour.destroy(() => resolve()) } catch { resolve() }
      })
    },
  }
}
