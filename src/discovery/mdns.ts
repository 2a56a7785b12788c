// The mDNS socket: one UDP socket on port 5353 that joins 224.0.0.251 on every multicast-capable
// interface and sends each multicast packet out of each of them, as avahi does. Sending names the
// interface (IP_MULTICAST_IF), so no route is needed: a LAN of link-local addresses or an isolated
// switch without a default route works. Interfaces are looked at again every few
// seconds, so a cable plugged in later is joined. When mDNS cannot work here (no interface can
// carry multicast, or every send fails), it is said once in the log and in status().
import { createSocket } from 'node:dgram'
import { readFileSync } from 'node:fs'
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os'
import { isIPv4 } from 'node:net'
import { dns } from './codec.js'

export interface SrvData { port: number, target: string, priority?: number, weight?: number }

export interface MdnsRecord {
  name: string
  type: string
  ttl?: number
  /** the cache-flush bit: "this is the whole set of this name and type" */
  flush?: boolean
  data: unknown
}

export interface Question { name: string, type: string, class?: string }

export interface MdnsPacket {
  id?: number
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

/** Whether mDNS can work here, for the log, `meta` and `rrcloud doctor`. */
export interface MdnsStatus {
  working: boolean
  /** interfaces joined, e.g. `veth0 10.77.0.2` */
  interfaces: string[]
  /** why it does not work, in words a user can act on */
  problem?: string
}

/** Where a packet goes: by default multicast on every joined interface. */
export interface Destination {
  /** multicast on this interface only */
  iface?: Iface
  /** unicast to this address and port (legacy unicast replies, RFC 6762 §6.7) */
  unicast?: Rinfo
}

export const MDNS_PORT = 5353
const GROUP = '224.0.0.251'
const RESCAN_MS = 5000
const IFF_UP = 0x1
const IFF_MULTICAST = 0x1000

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

/** The link's flags (Linux sysfs); undefined where they cannot be read. */
function linkFlags (name: string): number | undefined {
  try { return parseInt(readFileSync(`/sys/class/net/${name}/flags`, 'utf8'), 16) } catch { return undefined }
}

/** Why an interface cannot carry mDNS, or undefined when it can. */
function unfit (name: string): string | undefined {
  const flags = linkFlags(name)
  if (flags === undefined) return undefined
  if (!(flags & IFF_UP)) return 'down'
  if (!(flags & IFF_MULTICAST)) return 'no multicast'
  return undefined
}

/** Every interface that is up, has an IPv4 address and can carry multicast (loopback left out). */
export function multicastInterfaces (): { usable: Iface[], skipped: string[] } {
  const usable: Iface[] = []
  const skipped: string[] = []
  for (const [name, infos = []] of Object.entries(networkInterfaces())) {
    const v4 = infos.find((i) => i.family === 'IPv4')
    if (infos.every((i) => i.internal)) continue
    const why = v4 ? unfit(name) : 'no IPv4 address'
    if (why || !v4) skipped.push(`${name}: ${why}`)
    else usable.push({ name, address: v4.address, infos })
  }
  return { usable, skipped }
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

type Listener = (packet: MdnsPacket, rinfo: Rinfo, iface?: Iface) => void

export interface Mdns {
  /** resolves once the socket is bound (with or without a usable interface: see status()); rejects if it cannot bind */
  ready: Promise<void>
  status (): MdnsStatus
  /** `authorities`: the records a probe proposes (RFC 6762 §8.2), so that simultaneous probers can tell who wins */
  query (questions: Question[], authorities?: MdnsRecord[]): Promise<void>
  respond (answers: MdnsRecord[], additionals?: MdnsRecord[], to?: Destination): Promise<void>
  /** sends a whole packet (a legacy unicast reply carries the query's id and questions) */
  send (packet: Partial<MdnsPacket> & { type: 'query' | 'response', flags?: number }, to?: Destination): Promise<void>
  /** `iface`: the joined interface whose subnet the sender is on, when one is */
  onResponse (fn: Listener): () => void
  onQuery (fn: Listener): () => void
  /** interfaces joined after start (a cable plugged in): names are probed there again */
  onInterfaces (fn: (added: Iface[]) => void): () => void
  close (): Promise<void>
}

const key = (i: Iface): string => `${i.name} ${i.address}`
// what this process last said about mDNS not working, shared by its sockets
let said = ''

/**
 * Opens the mDNS socket. With `pinned`, only that interface is joined and sent on, and packets from
 * sources off its subnets are dropped (the socket, bound to 0.0.0.0 so that it receives the group,
 * also hears groups joined on other interfaces).
 */
export function openMdns (pinned: Iface | undefined, log: (msg: string) => void): Mdns {
  const socket = createSocket({ type: 'udp4', reuseAddr: true })
  const joined = new Map<string, Iface>()
  const sendErrors = new Map<string, string>()
  const listeners = { query: new Set<Listener>(), response: new Set<Listener>(), interfaces: new Set<(a: Iface[]) => void>() }
  let problem: string | undefined
  let closed = false
  let bound = false
  let rescan: NodeJS.Timeout | undefined
  let queue: Promise<void> = Promise.resolve()

  /** says a problem once per process (a node has two sockets); says it again only when it changes */
  const setProblem = (p: string | undefined): void => {
    problem = p
    if (p && p !== said) log(`mdns: cannot work here: ${p}`)
    else if (!p && said) log(`mdns: working again on ${[...joined.values()].map(key).join(', ')}`)
    said = p ?? ''
  }
  const status = (): MdnsStatus => {
    const failing = [...joined.keys()].filter((k) => sendErrors.has(k))
    const p = problem ?? (joined.size > 0 && failing.length === joined.size
      ? `sending multicast fails on ${failing.map((k) => `${k}: ${sendErrors.get(k)}`).join('; ')}`
      : undefined)
    return { working: joined.size > 0 && !p, interfaces: [...joined.keys()], ...(p ? { problem: p } : {}) }
  }

  const scan = (): void => {
    if (closed || !bound) return
    let want: Iface[]
    let skipped: string[] = []
    if (pinned) {
      const why = unfit(pinned.name)
      want = why ? [] : [pinned]
      if (why) skipped = [`${pinned.name}: ${why}`]
    } else {
      ({ usable: want, skipped } = multicastInterfaces())
    }
    const wanted = new Set(want.map(key))
    for (const [k, i] of joined) {
      if (wanted.has(k)) continue
      try { socket.dropMembership(GROUP, i.address) } catch {}
      joined.delete(k)
      sendErrors.delete(k)
    }
    const added: Iface[] = []
    for (const i of want) {
      if (joined.has(key(i))) continue
      try {
        socket.addMembership(GROUP, i.address)
      } catch (e) {
        // EADDRINUSE: this socket is already in the group there (an address changed)
        if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') {
          skipped.push(`${i.name}: cannot join ${GROUP}: ${(e as Error).message}`)
          continue
        }
      }
      joined.set(key(i), i)
      added.push(i)
    }
    if (joined.size === 0) {
      setProblem(`no network interface can carry multicast (${skipped.length ? skipped.join('; ') : 'only loopback'}): other machines cannot find this one, nor it them`)
    } else if (problem) {
      setProblem(undefined)
    }
    if (added.length && rescan) {
      for (const fn of listeners.interfaces) fn(added)
    }
  }

  const ready = new Promise<void>((resolve, reject) => {
    socket.once('error', (err) => {
      log(`mdns socket: ${err.message}`)
      reject(err)
    })
    socket.bind(MDNS_PORT, '0.0.0.0', () => {
      bound = true
      socket.setMulticastTTL(255)
      socket.setMulticastLoopback(true)
      scan()
      rescan = setInterval(scan, RESCAN_MS)
      rescan.unref()
      resolve()
    })
  })
  ready.catch(() => {})
  // after bind, errors are reported on the send that failed; this keeps one from crashing the process
  socket.on('error', () => {})

  socket.on('message', (buf, rinfo) => {
    let packet: MdnsPacket
    try { packet = dns.decode(buf) as MdnsPacket } catch { return }
    const iface = [...joined.values()].find((i) => onLink(i, rinfo.address))
    if (pinned && !onLink(pinned, rinfo.address)) return
    for (const fn of listeners[packet.type === 'query' ? 'query' : 'response']) {
      try { fn(packet, rinfo, iface) } catch (e) { log(`mdns: bad packet from ${rinfo.address}: ${(e as Error).message}`) }
    }
  })

  const sendOne = (buf: Buffer, port: number, address: string): Promise<void> =>
    new Promise((resolve, reject) => socket.send(buf, port, address, (err) => err ? reject(err) : resolve()))

  const send: Mdns['send'] = (packet, to = {}) => {
    if (closed || !bound) return Promise.resolve()
    const buf = dns.encode({ questions: [], answers: [], additionals: [], authorities: [], ...packet })
    // one send at a time: the interface set for a send must not change before the send is done
    queue = queue.then(async () => {
      if (closed) return
      if (to.unicast) {
        await sendOne(buf, to.unicast.port, to.unicast.address).catch((e: Error) => log(`mdns: reply to ${to.unicast!.address}:${to.unicast!.port} not sent: ${e.message}`))
        return
      }
      for (const i of to.iface ? [to.iface] : [...joined.values()]) {
        const k = key(i)
        try {
          socket.setMulticastInterface(i.address)
          await sendOne(buf, MDNS_PORT, GROUP)
          if (sendErrors.delete(k) && !status().problem) log(`mdns: sending on ${i.name} works again`)
        } catch (e) {
          const msg = (e as Error).message
          if (sendErrors.get(k) !== msg) log(`mdns: cannot send on ${i.name}: ${msg}`)
          sendErrors.set(k, msg)
        }
      }
    })
    return queue
  }

  const on = (set: Set<Listener>, fn: Listener): () => void => {
    set.add(fn)
    return () => set.delete(fn)
  }
  return {
    ready,
    status,
    send,
    query: (questions, authorities) => send({ type: 'query', questions, authorities: authorities ?? [] }),
    respond: (answers, additionals = [], to) => send({ type: 'response', flags: dns.AUTHORITATIVE_ANSWER, answers, additionals }, to),
    onResponse: (fn) => on(listeners.response, fn),
    onQuery: (fn) => on(listeners.query, fn),
    onInterfaces (fn) {
      listeners.interfaces.add(fn)
      return () => listeners.interfaces.delete(fn)
    },
    async close () {
      if (closed) return
      await queue
      closed = true
      clearInterval(rescan)
      if (!bound) { try { socket.close() } catch {} return }
      for (const i of joined.values()) { try { socket.dropMembership(GROUP, i.address) } catch {} }
      await new Promise<void>((resolve) => socket.close(() => resolve()))
    },
  }
}
