import { connect } from 'node:net'
import { debugLog } from './log.js'
import { DEFAULT_PORT, type Server } from './address.js'
import { ClientError, EXIT } from './errors.js'
import { fetchText } from './http.js'
import { explain, type NodeError } from './api.js'
import { avoidedUntil } from './avoid.js'
import type { ServerSource } from './servers.js'
import { afterSubmit, hasPrinter, rank, spread, type PeerInfo, type TaskNeeds } from '../scheduler/rank.js'
import { withPlacements } from '../scheduler/placed.js'
import { holdJournal, notePlacement, takeBackPlacement } from './placed.js'
import type { Peer } from '../discovery/index.js'

const log = debugLog('rrcloud:lan')

/**
 * The LAN as the client sees it: the nodes found over mDNS (or, faster, through the view of a node
 * running on this machine), plus the nodes named with --s or in rrcloudrc. Tasks go to the best
 * candidate of src/scheduler; a batch from one process spreads because each choice is counted
 * against the snapshot before the next.
 */

/** A node as `rrcloud peers` shows it and the scheduler ranks it. */
export interface LanPeer extends PeerInfo {
  /** SRV target (`box.local`), or the host the user named */
  host: string
  address: string
  port: number
  cores?: number
  version?: string
  /** ms since the information was current */
  ageMs: number
  /** how it was found: the local node itself, mDNS, --s/rrcloudrc */
  via: 'local' | 'mdns' | 'static'
  /** why it could not be asked (unreachable static node) */
  error?: string
}

export interface LanOptions {
  /** interface (name or IPv4) to ask on; default: RRCLOUD_INTERFACE, else all */
  interface?: string
  /** ask the LAN over mDNS (default: unless RRCLOUD_MDNS is off/0/no/false) */
  mdns?: boolean
  /** nodes named by the user (--s, rrcloudrc), by service ('' for all services) */
  statics?: (service?: string) => Server[]
  /** where they were named, for messages ("--s", "rrcloudrc (FILES)") */
  staticOrigin?: (service?: string) => string
  /** where nodes could have been named and were not, for the message when none is found */
  unnamed?: string
  token?: string
  /** the node on this machine, used as a cache of the LAN when it runs (default 127.0.0.1:4468) */
  local?: Server | false
  /** how long mDNS answers are collected at most */
  discoverMs?: number
}

export interface LanSource extends ServerSource {
  /**
   * Whom to send a task to, best first. Unless `peek`, the first is counted as taking the task,
   * so that the next call of this process ranks with it.
   */
  candidates (service?: string, needs?: TaskNeeds, peek?: boolean): Promise<Server[]>
  /**
   * The task candidates() counted went to `to` (the first that took it, or a node holding its
   * result or files): when that is another node, or a cache hit took no slot, the count moves
   */
  took (to: Server, cached: boolean): void
  /** the peers known now (looks once, then reuses the look unless `fresh`); with the nodes named for all services */
  peers (fresh?: boolean): Promise<LanPeer[]>
  /** why the named nodes asked so far (by peers or candidates) could not be asked */
  unreachable (): NodeError[]
  /** every place looked at, with what was found there (for "no node found") */
  looked (): string

  close (): Promise<void>
}

export function mdnsEnabled (env: NodeJS.ProcessEnv = process.env): boolean {
  return !/^(off|0|no|false)$/i.test(env.RRCLOUD_MDNS ?? '')
}

const urlOf = (address: string, port: number) => `http://${address.includes(':') ? `[${address}]` : address}:${port}`

interface Meta {
  id?: string; serverName?: string; services?: string; cpuLoad?: number; cores?: number; slots?: number
  free?: number; queue?: number; tokenRequired?: boolean; version?: string
  printers?: Array<{ name: string; port: string; state?: string; farmState?: string; groups?: string[] }>
}

/** A node's own meta, as a peer. */
function fromMeta (server: Server, m: Meta, via: LanPeer['via']): LanPeer {
  const cores = Math.max(1, m.cores ?? 1)
  return {
    ...namedPeer(server),
    id: m.id ?? server.url,
    name: m.serverName ?? server.name,
    local: via === 'local',
    services: (m.services ?? '').split(',').filter(Boolean),
    load: Math.round((m.cpuLoad ?? 0) / cores * 100) / 100,
    cores,
    slots: m.slots ?? 1,
    free: m.free ?? 0,
    queue: m.queue ?? 0,
    // the farm's state where the node has a farm (finished, error, ...), as its mDNS record says
    printers: (m.printers ?? []).map(({ name, port, state, farmState, groups }) => ({ name, port, state: farmState ?? state, ...(groups?.length ? { groups } : {}) })),
    tokenRequired: Boolean(m.tokenRequired),
    version: m.version?.replace(/^rrcloud /, ''),
    via,
  }
}

/** A peer of src/discovery, as discover() and a browser give it, and GET /api/v1/peers as JSON. */
export type Discovered = Pick<Peer, 'name' | 'host' | 'addresses' | 'port' | 'ageMs' | 'record'>

export function fromDiscovered (p: Discovered): LanPeer | undefined {
  const address = p.addresses[0]
  if (!address || !p.record?.id) return undefined
  const r = p.record
  return {
    id: r.id,
    name: r.name ?? p.name,
    url: urlOf(address, p.port),
    host: p.host,
    address,
    port: p.port,
    services: r.services,
    load: r.load,
    cores: r.cores,
    slots: r.slots,
    free: r.free,
    queue: r.queue,
    printers: r.printers,
    tokenRequired: r.tokenRequired,
    version: r.version,
    ageMs: p.ageMs,
    via: 'mdns',
  }
}

async function getJson<T> (url: string, token: string | undefined, timeoutMs: number): Promise<{ status: number; body: T }> {
  const r = await fetchText(url, {
    timeoutMs,
    connectTimeoutMs: timeoutMs,
    headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
  })
  let body: T
  try { body = JSON.parse(r.body) } catch { throw new Error(`${url}: not JSON (status ${r.statusCode})`) }
  return { status: r.statusCode, body }
}

/**
 * Whether something accepts connections at the server's address: most machines that run the
 * client run no node, and a refused connection costs a short run less than two refused requests.
 */
function listens (server: Server, timeoutMs: number): Promise<boolean> {
  const u = new URL(server.url)
  return new Promise((resolve) => {
    const socket = connect({ host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) || DEFAULT_PORT, timeout: timeoutMs })
    const answer = (yes: boolean) => () => { socket.destroy(); resolve(yes) }
    socket.once('connect', answer(true))
    socket.once('error', answer(false))
    socket.once('timeout', answer(false))
  })
}

/** How long a named node may take to say what it has: its meta is a small local read on the node. */
export const ASK_MS = 2000

export const LOCAL: Server = { url: `http://127.0.0.1:${DEFAULT_PORT}`, name: `127.0.0.1:${DEFAULT_PORT}` }

interface Around { peers: LanPeer[]; how: string[]; looked: string[] }

/** The LAN source of servers (see the top of this file). */
export function createLanSource (o: LanOptions = {}): LanSource {
  const iface = o.interface ?? (process.env.RRCLOUD_INTERFACE || undefined)
  const mdns = o.mdns ?? mdnsEnabled()
  const local = o.local === undefined ? LOCAL : o.local
  let lan: Promise<Around> | undefined
  const asked = new Map<string, Promise<LanPeer>>()
  const failures = new Map<string, NodeError>()
  /** per service: the peers as this process's choices left them */
  const snapshots = new Map<string, LanPeer[]>()
  /** the last choice candidates() counted, until took() says where the task went */
  let counted: { key: string, before: LanPeer[], id: string, at: number } | undefined
  /** when the last look around ended: the peers' records were current ageMs before it */
  let lanAt = 0
  let how = ''
  let looked: string[] = []

  /** The node on this machine and what it sees, else a query over mDNS. */
  async function lookAround (): Promise<Around> {
    const started = Date.now()
    const found: LanPeer[] = []
    const how: string[] = []
    const looked: string[] = []
    let browsed = false
    const nobodyAt = (at: Server, why: string) => {
      log('%s at %s', why, at.url)
      looked.push(`${at.url.replace(/^http:\/\//, '')} (no node there)`)
    }
    if (!local) {
      looked.push('not on this machine (RRCLOUD_LOCAL=off)')
    } else if (!await listens(local, 1500)) {
      nobodyAt(local, 'nothing listens on this machine')
    } else {
      const [meta, peers] = await Promise.allSettled([
        getJson<Meta>(`${local.url}/api/v1/meta`, o.token, 1500),
        getJson<Discovered[]>(`${local.url}/api/v1/peers`, o.token, 1500),
      ])
      if (meta.status === 'fulfilled' && meta.value.status === 200) {
        const self = fromMeta(local, meta.value.body, 'local')
        found.push(self)
        if (peers.status === 'fulfilled' && peers.value.status === 200 && Array.isArray(peers.value.body)) {
          browsed = true
          for (const p of peers.value.body) {
            const peer = fromDiscovered(p)
            if (peer && peer.id !== self.id) found.push(peer)
          }
        }
        how.push(browsed ? 'the node on this machine and the peers it sees' : 'the node on this machine')
      } else {
        nobodyAt(local, 'no node on this machine')
      }
    }
    if (!browsed && mdns) {
      const { discover } = await import('../discovery/index.js')
      const ms = o.discoverMs ?? 400
      let failed: string | undefined
      const peers = await discover({ timeoutMs: ms, interface: iface }).catch((e: Error) => {
        log('mdns: %s', e.message)
        failed = e.message
        return []
      })
      for (const p of peers) {
        const peer = fromDiscovered(p)
        if (peer && !found.some((x) => x.id === peer.id)) found.push(peer)
      }
      how.push(`mDNS${iface ? ` on ${iface}` : ''}`)
      looked.push(`mDNS ${iface ? `on ${iface}` : 'on every interface'} (${failed ? `failed: ${failed}` : peers.length ? `${peers.length} answered` : `no answer in ${ms / 1000} s`})`)
    } else if (!mdns) {
      looked.push('not mDNS (RRCLOUD_MDNS is off)')
    }
    log('looked around in %d ms (%s): %o', Date.now() - started, how.join(', '), found.map((p) => `${p.name} ${p.url} free ${p.free}/${p.slots} queue ${p.queue}`))
    return { peers: found, how, looked }
  }

  /** A node named by the user, asked for its meta (once per process). */
  const ask = (s: Server): Promise<LanPeer> => {
    let p = asked.get(s.url)
    if (!p) {
      p = getJson<Meta>(`${s.url}/api/v1/meta`, o.token, ASK_MS).then((r) => {
        if (r.status !== 200) {
          failures.set(s.url, explain(s, undefined, r.status, JSON.stringify(r.body)))
          throw new Error(`answered ${r.status}`)
        }
        return fromMeta(s, r.body, 'static')
      }).catch((e: Error) => {
        if (!failures.has(s.url)) failures.set(s.url, explain(s, e))
        return { ...namedPeer(s), slots: 0, free: 0, reachable: false, error: e.message }
      })
      asked.set(s.url, p)
    }
    return p
  }

  /**
   * With `shortcut`, a single named node and nothing else is not asked first (when nothing is to be
   * chosen by what it has: not for a printer, which must be looked up).
   */
  async function peers (fresh = false, service?: string, shortcut = false): Promise<LanPeer[]> {
    if (fresh || !lan) {
      lan = lookAround().then((a) => { lanAt = Date.now(); return a })
      asked.clear()
      failures.clear()
      snapshots.clear()
    }
    const around = await lan
    const found = [...around.peers]
    const named = dedupe(o.statics?.(service) ?? []).filter((s) => !found.some((x) => x.url === s.url))
    if (shortcut && named.length === 1 && found.length === 0 && !asked.has(named[0].url)) {
      found.push({ ...namedPeer(named[0]), unknown: true } as LanPeer)
    } else {
      for (const p of await Promise.all(named.map(ask))) if (!found.some((x) => x.id === p.id)) found.push(p)
    }
    const origin = named.length ? o.staticOrigin?.(service) ?? 'the servers named' : undefined
    how = [...around.how, ...(origin ? [origin] : [])].join(', ')
    looked = [...around.looked, origin ?? o.unnamed ?? 'no node named (--s, rrcloudrc)']
    return found
  }

  /** Whom to send a task to, best first; throws a clear error when nobody can take it. */
  async function candidates (service?: string, needs: TaskNeeds = {}, peek = false): Promise<Server[]> {
    const all = await peers(false, service, needs.printer === undefined)
    if (service === undefined) {
      const order = [...all].sort((a, b) => Number(Boolean(b.local)) - Number(Boolean(a.local)))
      const usable = order.filter((p) => p.reachable !== false)
      if (!order.length) throw nobody(looked)
      return (usable.length ? usable : order).map(server)
    }
    const key = `${service}\0${needs.printer ?? ''}`
    const now = Date.now()
    const first = !snapshots.has(key) && needs.printer === undefined
    // an unknown named node (not asked first) may offer anything; this process's first task counts
    // the tasks other clients here sent since the nodes' records were current
    let known = (snapshots.get(key) ?? all).map((p) => (p as { unknown?: boolean }).unknown ? { ...p, services: [service] } : p)
    // held from reading the journal until this choice is in it
    const journal = first ? holdJournal(now) : undefined
    try {
      if (journal) known = withPlacements(known, journal.placed, (p) => lanAt - p.ageMs)
      const avoid = new Map<string, number>()
      for (const p of known) {
        const until = avoidedUntil(p.url, now)
        if (until) avoid.set(p.id, until)
      }
      // a node that wants a token we do not have would refuse: only when there is no other
      const pool = o.token ? known : known.filter((p) => !p.tokenRequired)
      let ranked = rank(service, needs, pool, { now, avoid })
      if (!ranked.length) ranked = rank(service, needs, known, { now, avoid })
      // avoided nodes are still better than none
      if (!ranked.length) ranked = rank(service, needs, known, { now })
      if (!ranked.length) {
        const dead = known.filter((p) => p.reachable === false)
        if (dead.length && needs.printer === undefined) return dead.map(server)
        // the printer may be on a node that could not be asked: say why it could not
        const lost = dead.flatMap((p) => failures.get(p.url) ?? [])
        if (lost.length && dead.length === known.length) throw cannotAsk(lost, `printer ${needs.printer}`)
        if (!known.length) throw nobody(looked)
        throw notOffered(service, needs, known, how)
      }
      // this process's first task of a kind: other clients may be choosing from the same snapshot
      // right now (`make -j`, a shell loop of `slic3r.cloud ... &`), so draw among the best instead
      // of all taking the very best; later ones follow the snapshot as this process's tasks fill it
      if (first) ranked = spread(ranked, Math.random())
      if (!peek) {
        snapshots.set(key, afterSubmit(known, ranked[0].peer.id) as LanPeer[])
        notePlacement(ranked[0].peer.id, now)
        counted = { key, before: known, id: ranked[0].peer.id, at: now }
      }
      return ranked.map((c) => server(c.peer as LanPeer))
    } finally {
      journal?.release()
    }
  }

  function took (to: Server, cached: boolean): void {
    const c = counted
    counted = undefined
    if (!c) return
    const went = cached ? undefined : c.before.find((p) => p.url === to.url)?.id
    if (went === c.id) return
    // counted where it did not go: the next choices here and in the user's other clients see where it did
    takeBackPlacement(c.id, c.at)
    if (went) notePlacement(went)
    snapshots.set(c.key, went ? afterSubmit(c.before, went) as LanPeer[] : c.before)
  }

  return {
    candidates,
    took,
    peers: (fresh) => peers(fresh),
    unreachable: () => [...failures.values()],
    origin: () => how || 'the LAN',
    looked: () => looked.join(', '),
    async close () {},
  }
}

/** A node the user named, before anything is known about it. */
function namedPeer (s: Server): LanPeer {
  const u = new URL(s.url)
  return {
    id: s.url, name: s.name, url: s.url, host: u.hostname, address: u.hostname.replace(/^\[|\]$/g, ''),
    port: Number(u.port) || DEFAULT_PORT, services: [], load: 0, slots: 1, free: 1, queue: 0, ageMs: 0, via: 'static',
  }
}

/** As messages name it: `box (192.168.1.20:4468)`, or the address alone when that is its name. */
function server (p: LanPeer): Server {
  const at = p.url.replace(/^https?:\/\//, '')
  return { url: p.url, name: p.name === p.address || p.name === at || p.name === p.url ? at : `${p.name} (${at})` }
}

function dedupe (list: Server[]): Server[] {
  return list.filter((s, i) => list.findIndex((x) => x.url === s.url) === i)
}

/** No node at all: where the client looked, and what to do. */
export class NoNodeError extends ClientError {
  constructor (readonly looked: string[]) {
    super(`no rrcloud node found; looked at: ${looked.join(', ')}. Start one with \`rrcloud node\` on this or ` +
      'another machine of the LAN, name one with --s=HOST[:PORT] or in rrcloudrc, or run the tool here with --local', EXIT.node)
  }
}

const nobody = (looked: string[]) => new NoNodeError(looked)

/** The named nodes that could not be asked what they have (for `what`), as one error. */
export function cannotAsk (errors: NodeError[], what: string): ClientError {
  if (errors.length === 1) return errors[0]
  return new ClientError(`could not ask any node for ${what}:\n${errors.map((e) => `  ${e.message}`).join('\n')}`, EXIT.node)
}

/** Nobody offers the service (or has the printer): say who is out there and what they offer. */
export function notOffered (service: string, needs: TaskNeeds, peers: LanPeer[], how: string): ClientError {
  if (needs.printer !== undefined) {
    const printers = peers.flatMap((p) => (p.printers ?? []).map((x) => `${x.name} (${x.port}, ${x.state ?? '?'}) on ${p.name}`))
    const dead = peers.filter((p) => p.reachable === false)
    // the printer may be on a node that did not answer: that is the node's trouble, not the command's
    return new ClientError(`no printer ${needs.printer} on the LAN; ${printers.length ? `printers: ${printers.join('; ')}` : 'no node has a printer attached'}` +
      (dead.length ? `; not asked: ${dead.map((p) => `${server(p).name} (${p.error ?? 'no answer'})`).join(', ')}` : '') +
      ' (`rrcloud peers` lists them)', dead.length ? EXIT.node : EXIT.usage)
  }
  const offered = [...new Set(peers.flatMap((p) => p.services))].sort()
  return new ClientError(`no node offers ${service} (${peers.length} found via ${how}); they offer ${offered.join(', ') || 'nothing'}; ` +
    'see `rrcloud peers`', EXIT.usage)
}
