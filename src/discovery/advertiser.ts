// Advertises one node as `<name>-<short id>._rrcloud._tcp.local`.
//
// bonjour-service's publish() is not used, because in 1.4.4 it
// - cannot change a TXT record: stop()+publish() sends goodbyes and comes back ~0.8 s later (peers
//   see the node leave and return), and its re-announcements re-send the packet built at start, so
//   an edited Service object later puts the stale TXT back on the LAN;
// - uses fixed TTLs (TXT 75 min), so a cache never notices a node that died (we need seconds);
// - announces the addresses of every interface, ignoring the pinned one, and an SRV target without
//   `.local`;
// - on a name conflict stops the service and console.logs, without renaming.
// So we build the records here, answer queries from them (responder.ts, on our own socket, mdns.ts)
// and send announcements, TXT updates (with the cache-flush bit, so caches replace the old TXT in
// place) and goodbyes ourselves.
import { EventEmitter } from 'node:events'
import { hostname } from 'node:os'
import debug from 'debug'
import { encodeRecord, truncateBytes, type NodeRecord } from './record.js'
import { advertisedAddresses, machineAddresses, openMdns, resolveInterface, type Iface, type Mdns, type MdnsRecord, type MdnsStatus } from './mdns.js'
import { createResponder, type Responder } from './responder.js'
import { eqName, findConflicts, hostLabel, instanceLabel, SERVICE_TYPE, withSuffix, type Claim, type Conflicts } from './names.js'

const debugLog = debug('rrcloud:discovery')

export interface AdvertiserConfig {
  /** node name; the instance is `<name>-<6 hex digits of the node id>` */
  name: string
  /** HTTP port of the node */
  port: number
  record: NodeRecord
  /** host label for `<host>.local` (default: this machine's host name) */
  host?: string
  /** interface name or IPv4 address to advertise on (default: all) */
  interface?: string
  /** TTL of PTR/SRV/TXT: a browser drops a node that stops answering after about this long */
  ttlSec?: number
  /**
   * TXT updates are sent at most this often (default 1000 ms): a change after a quiet time goes out
   * at once, changes in between are merged into one
   */
  minUpdateIntervalMs?: number
  /**
   * The name is probed at once, but announced (and queries answered) only once this resolves
   * true: a node probes while it starts and is announced once it listens. False: never announced.
   */
  announceAfter?: Promise<boolean>
  /**
   * more DNS-SD services of this node, on its port and host name (e.g. `_octoprint._tcp` for each
   * printer): probed, announced, defended, renamed on conflict (`name-2`) and said goodbye to with
   * the node's own instance
   */
  services?: ServiceInstance[]
}

/** A DNS-SD service instance published beside the node's own: `<name>.<type>` with a TXT record. */
export interface ServiceInstance {
  /** e.g. `_octoprint._tcp.local` */
  type: string
  /** the instance label (at most 63 bytes; dots are not allowed in it) */
  name: string
  /** `key=value` strings */
  txt: string[]
}

export interface AdvertiserDeps {
  log?: (line: string) => void
}

export interface AdvertiserEvents {
  /** a conflict made us take another instance name or host name */
  rename: [name: string, host: string]
}

export interface Advertiser extends EventEmitter<AdvertiserEvents> {
  /** current instance name (changes when a conflict forces a rename) */
  readonly name: string
  /** current SRV target, `<host>.local` */
  readonly host: string
  readonly record: NodeRecord
  /** resolves once the name is claimed and announced; rejects if the socket cannot be opened */
  readonly ready: Promise<void>
  /** whether mDNS can work on this machine now (no multicast-capable interface: it cannot) */
  status (): MdnsStatus
  /**
   * merges fields into the record: queries are answered with it at once, and browsers that hold the
   * record see the change within minUpdateIntervalMs (an update is multicast only when someone on
   * the LAN asked for `_rrcloud._tcp` or our names within the TTL: nobody else holds it alive)
   */
  update (partial: Partial<NodeRecord>): void
  /** sends goodbyes (TTL 0) and closes the socket; harmless to call twice */
  close (): Promise<void>
}

export const DEFAULT_TTL_SEC = 4
const HOST_TTL_SEC = 120
const PROBES = 3
const PROBE_INTERVAL_MS = 250
const TIE_WAIT_MS = 1000
const UPDATE_INTERVAL_MS = 1000
/** past the TTL, how long a question heard still counts: a browser asks again before its records run out */
const ASKED_MARGIN_MS = 1000

const sameTxt = (a: Buffer[], b: Buffer[]): boolean => a.length === b.length && a.every((x, i) => x.equals(b[i]))

/** An extra service as published now: its label may have taken a suffix after a conflict. */
interface Extra { type: string; base: string; n: number; txt: Buffer[] }
const extraFqdn = (x: Extra): string => `${withSuffix(x.base, x.n)}.${x.type}`

class NodeAdvertiser extends EventEmitter<AdvertiserEvents> implements Advertiser {
  readonly ready: Promise<void>
  private readonly instanceBase: string
  private readonly hostBase: string
  private instanceN = 1
  private hostN = 1
  private current: NodeRecord
  private txt: Buffer[]
  private phase: 'probing' | 'announced' | 'closed' = 'probing'
  /** when the last TXT update was multicast (an announcement carrying the current TXT counts) */
  private lastUpdate = 0
  /** when a question that our records answer was last heard on the LAN */
  private askedAt = -Infinity
  /** when our records were last multicast other than as an update (announced, defended) */
  private assertedAt = -Infinity
  private lastDefended = 0
  private lostTie = false
  private readonly responder: Responder
  private timers = new Map<NodeJS.Timeout, () => void>()
  private updateTimer?: NodeJS.Timeout
  private probeHook?: (records: MdnsRecord[]) => void
  private tieHook?: (records: MdnsRecord[]) => void
  private readonly stopHearingProbes: () => void
  private readonly stopHearingInterfaces: () => void
  private closing?: Promise<void>
  private readonly mdns: Mdns
  private readonly iface?: Iface
  private readonly stopListening: () => void
  private readonly log: (line: string) => void
  private readonly extras: Extra[]
  /** extras whose names a rival holds, found while probing */
  private extrasLost = new Set<Extra>()

  constructor (private readonly config: AdvertiserConfig, deps: AdvertiserDeps) {
    super()
    this.log = deps.log ?? ((l) => debugLog(l))
    this.iface = config.interface ? resolveInterface(config.interface) : undefined
    this.instanceBase = instanceLabel(config.name, config.record.id)
    this.hostBase = hostLabel(config.host ?? hostname())
    this.current = { ...config.record }
    this.txt = encodeRecord(this.current)
    this.extras = (config.services ?? []).map((x) => ({ type: x.type, base: truncateBytes(x.name.replace(/\./g, '-'), 63), n: 1, txt: x.txt.map((t) => Buffer.from(t)) }))
    this.mdns = openMdns(this.iface, this.log)
    this.responder = createResponder(this.mdns)
    this.stopListening = this.mdns.onResponse((packet) => this.onResponse([...packet.answers, ...packet.additionals]))
    // RFC 6762 §8: names are probed again on an interface that comes up (a cable plugged in later)
    this.stopHearingInterfaces = this.mdns.onInterfaces(() => {
      if (this.phase !== 'announced') return
      this.phase = 'probing'
      this.responder.serve([])
      this.probeAgain()
    })
    // another host probing for our names at the same moment (RFC 6762 §8.2): its proposed records
    // come in the authority section of its query
    this.stopHearingProbes = this.mdns.onQuery((packet) => {
      const proposed = packet.authorities ?? []
      if (proposed.some((r) => this.ours(r.name))) this.tieHook?.(proposed)
      else if ((packet.questions ?? []).some((q) => this.asks(q.name))) this.askedAt = Date.now()
    })
    this.ready = this.start()
    this.ready.catch((e: Error) => { if (this.phase !== 'closed') this.log(`mdns: not advertising: ${e.message}`) })
  }

  get name (): string { return withSuffix(this.instanceBase, this.instanceN) }
  get host (): string { return `${withSuffix(this.hostBase, this.hostN)}.local` }
  get record (): NodeRecord { return { ...this.current } }
  private get fqdn (): string { return `${this.name}.${SERVICE_TYPE}` }
  /** a name this advertiser claims: its instance, its host, or an extra service's instance */
  private ours (name: string): boolean {
    return eqName(name, this.fqdn) || eqName(name, this.host) || this.extras.some((x) => eqName(name, extraFqdn(x)))
  }

  /** the extras whose instance names these records dispute, and whether we lose each (§8.2) */
  /** a question for a name we answer: our service types, or one of our names */
  private asks (name: string): boolean {
    return eqName(name, SERVICE_TYPE) || this.extras.some((x) => eqName(name, x.type)) || this.ours(name)
  }

  /**
   * Whether a cache on the LAN may hold our records alive: one that learned them from our
   * announcement holds them for a TTL; one that wants them longer asks before they run out (RFC 6762
   * §5.2), and one that learned them from an answer to someone else's question saw that question.
   * With neither in the last TTL, nobody holds them, and a change need not be multicast: whoever
   * asks next gets it in the answer. (Updates do not count: nobody asked for them.)
   */
  private heard (): boolean {
    const now = Date.now()
    return now - this.askedAt <= this.ttl * 1000 + ASKED_MARGIN_MS || now - this.assertedAt <= this.ttl * 1000
  }

  private extraConflicts (records: MdnsRecord[], tie: boolean): Extra[] {
    const base = this.claim()
    return this.extras.filter((x) => {
      const c = findConflicts(records, { ...base, fqdn: extraFqdn(x) })
      return c.instance && !(tie && c.instanceWeWin)
    })
  }
  private get ttl (): number { return this.config.ttlSec ?? DEFAULT_TTL_SEC }

  status (): MdnsStatus { return this.mdns.status() }

  private claim (): Claim {
    const { v4, v6 } = advertisedAddresses(this.iface)
    return { fqdn: this.fqdn, srv: { port: this.config.port, target: this.host }, host: this.host, addresses: [...v4, ...v6], local: machineAddresses() }
  }

  private records (): { answers: MdnsRecord[], additionals: MdnsRecord[] } {
    const { ttl, fqdn, host } = this
    const addrs = advertisedAddresses(this.iface)
    const srv = { port: this.config.port, target: host, priority: 0, weight: 0 }
    return {
      answers: [
        { name: SERVICE_TYPE, type: 'PTR', ttl, data: fqdn },
        { name: fqdn, type: 'SRV', ttl, flush: true, data: srv },
        { name: fqdn, type: 'TXT', ttl, flush: true, data: this.txt },
        ...this.extras.flatMap((x): MdnsRecord[] => [
          { name: x.type, type: 'PTR', ttl, data: extraFqdn(x) },
          { name: extraFqdn(x), type: 'SRV', ttl, flush: true, data: srv },
          { name: extraFqdn(x), type: 'TXT', ttl, flush: true, data: x.txt },
        ]),
      ],
      // no cache-flush bit: the machine's own responder (avahi) may publish this host name with
      // more addresses than ours, and flushing would wipe them from every cache
      additionals: [
        ...addrs.v4.map((data) => ({ name: host, type: 'A', ttl: HOST_TTL_SEC, data })),
        ...addrs.v6.map((data) => ({ name: host, type: 'AAAA', ttl: HOST_TTL_SEC, data })),
      ],
    }
  }

  /** runs fn after ms; close() cancels it, or runs it at once when `onClose` (for waits) */
  private later (ms: number, fn: () => void, onClose = false): void {
    const t = setTimeout(() => { this.timers.delete(t); fn() }, ms)
    this.timers.set(t, onClose ? fn : () => {})
  }

  private wait (ms: number): Promise<void> {
    return new Promise((resolve) => this.later(ms, resolve, true))
  }

  private async start (): Promise<void> {
    await this.mdns.ready
    for (let attempt = 1; this.phase === 'probing'; attempt++) {
      const c = await this.probe()
      if (this.phase !== 'probing') break
      const lostExtras = [...this.extrasLost]
      if (!c.instance && !c.host && !lostExtras.length) {
        if (this.config.announceAfter && !(await this.config.announceAfter)) await this.close()
        if (this.phase !== 'probing') break
        return this.announce()
      }
      if (c.instance || c.host) this.rename(c.instance, c.host)
      if (lostExtras.length) this.renameExtras(lostExtras)
      // RFC 6762 §8.1: after 15 conflicts, slow down
      if (attempt >= 15) await this.wait(5000)
      // §8.2: the loser of a tie waits a second before probing again, by which time the winner has
      // announced and answers for the names it won (a rival renamed at once would probe its new
      // names while the winner still probes, and make it rename what it had won)
      else if (this.lostTie) await this.wait(TIE_WAIT_MS)
    }
    if (this.phase === 'closed') throw new Error('advertiser closed before announcing')
  }

  /**
   * RFC 6762 §8.1: three queries for our names 250 ms apart, proposing our records; any answer
   * from a rival is a conflict. §8.2: a rival probing for the same name at the same moment is
   * heard from its proposed records (compared as §8.2 says, names.ts); the later set wins, and the
   * loser takes another name and probes it a second later, so that two nodes started together
   * never both announce one name and rename afterwards.
   */
  private async probe (): Promise<Conflicts> {
    const found: Conflicts = { instance: false, host: false, instanceWeWin: false, hostWeWin: false }
    // an answer is a conflict; a rival's probe is one only when we lose the tie
    this.lostTie = false
    this.extrasLost = new Set()
    const note = (records: MdnsRecord[], tie: boolean) => {
      const extras = this.extraConflicts(records, tie)
      if (tie && extras.length) this.lostTie = true
      for (const x of extras) this.extrasLost.add(x)
      const c = findConflicts(records, this.claim())
      const lost = { instance: c.instance && !(tie && c.instanceWeWin), host: c.host && !(tie && c.hostWeWin) }
      if (tie && (lost.instance || lost.host)) this.lostTie = true
      found.instance ||= lost.instance
      found.host ||= lost.host
    }
    this.probeHook = (records) => note(records, false)
    this.tieHook = (records) => note(records, true)
    const { answers, additionals } = this.records()
    const proposed = [...answers.filter((r) => r.type === 'SRV'), ...additionals]
    const questions = [this.fqdn, this.host, ...this.extras.map(extraFqdn)].map((name) => ({ name, type: 'ANY' }))
    try {
      for (let i = 0; i < PROBES && this.phase === 'probing' && !found.instance && !found.host && !this.extrasLost.size; i++) {
        debugLog('%s: probe %d of %d', this.fqdn, i + 1, PROBES)
        await this.mdns.query(questions, proposed)
          .catch((e: Error) => this.log(`mdns: probe not sent: ${e.message}`))
        await this.wait(PROBE_INTERVAL_MS)
      }
    } finally {
      this.probeHook = undefined
      this.tieHook = undefined
    }
    return found
  }

  private rename (instance: boolean, host: boolean): void {
    const before = `${this.name} on ${this.host}`
    if (instance) this.instanceN++
    if (host) this.hostN++
    this.log(`mdns: ${instance ? 'instance name' : 'host name'} in use on the LAN: ${before} is now ${this.name} on ${this.host}`)
  }

  private renameExtras (lost: Extra[]): void {
    for (const x of lost) {
      const before = extraFqdn(x)
      x.n++
      this.log(`mdns: service name in use on the LAN: ${before} is now ${extraFqdn(x)}`)
    }
    this.extrasLost = new Set()
  }

  private async announce (): Promise<void> {
    this.phase = 'announced'
    await this.send(true)
    // RFC 6762 §8.3: a second announcement one second later
    this.later(1000, () => { void this.send(true) })
    if (this.instanceN > 1 || this.hostN > 1) this.emit('rename', this.name, this.host)
  }

  /** Puts the current records in the responder and multicasts them. */
  private async send (announce: boolean, update = false): Promise<void> {
    if (this.phase !== 'announced') return
    const { answers, additionals } = this.serve()
    const now = Date.now()
    if (!update) this.assertedAt = now
    // these records carry the current TXT: an update waiting for its turn has nothing more to say
    if (update || this.updateTimer) {
      clearTimeout(this.updateTimer)
      this.updateTimer = undefined
      this.lastUpdate = now
    }
    const extra = announce ? this.serviceTypes() : []
    await this.mdns.respond([...answers, ...extra], additionals)
      .catch((e: Error) => this.log(`mdns: announcement not sent: ${e.message}`))
  }

  private serve (): { answers: MdnsRecord[], additionals: MdnsRecord[] } {
    const { answers, additionals } = this.records()
    this.responder.serve([...answers, ...additionals, ...this.serviceTypes()])
    return { answers, additionals }
  }

  /** RFC 6763 §9: the service types this host offers, for browsers that enumerate them */
  private serviceTypes (): MdnsRecord[] {
    const types = [SERVICE_TYPE, ...new Set(this.extras.map((x) => x.type))]
    return types.map((data) => ({ name: '_services._dns-sd._udp.local', type: 'PTR', ttl: this.ttl, data }))
  }

  private onResponse (records: MdnsRecord[]): void {
    if (!records.some((r) => this.ours(r.name))) return
    if (this.phase === 'probing') { this.probeHook?.(records); return }
    if (this.phase !== 'announced') return
    const lostExtras = this.extraConflicts(records, true)
    if (lostExtras.length) {
      // a rival holds one of our services' names: that one takes another name, all are probed again
      this.phase = 'probing'
      this.responder.serve([])
      this.renameExtras(lostExtras)
      this.probeAgain()
      return
    }
    const c = findConflicts(records, this.claim())
    const extraDisputed = this.extras.some((x) => findConflicts(records, { ...this.claim(), fqdn: extraFqdn(x) }).instance)
    if (!c.instance && !c.host && !extraDisputed) return
    const lose = { instance: c.instance && !c.instanceWeWin, host: c.host && !c.hostWeWin }
    if (lose.instance || lose.host) {
      // RFC 6762 §9: a rival claims our name, take another one. No goodbye for the service records
      // (the rival's PTR has the same data as ours), but one for our addresses under the lost
      // host name, which would otherwise linger in caches beside the rival's
      this.phase = 'probing'
      if (lose.host) {
        const gone = this.records().additionals.map((r) => ({ ...r, ttl: 0 }))
        void this.mdns.respond(gone).catch((e: Error) => this.log(`mdns: goodbye not sent: ${e.message}`))
      }
      this.responder.serve([])
      this.rename(lose.instance, lose.host)
      this.probeAgain()
    } else if (Date.now() - this.lastDefended > 1000) {
      // we keep the name: re-assert our records so that caches flush the rival's
      this.lastDefended = Date.now()
      void this.send(false)
    }
  }

  private probeAgain (): void {
    this.start().catch((e: Error) => { if (this.phase !== 'closed') this.log(`mdns: ${e.message}`) })
  }

  update (partial: Partial<NodeRecord>): void {
    if (this.phase === 'closed') return
    this.current = { ...this.current, ...partial }
    const txt = encodeRecord(this.current)
    if (sameTxt(txt, this.txt)) return
    this.txt = txt
    if (this.phase !== 'announced') return
    // queries are answered with the new TXT at once; the unsolicited update goes only to a LAN
    // where someone holds the record, and is rate-limited (RFC 6762 §6.2: the first change after a
    // quiet time at once, those that follow merged)
    this.serve()
    if (this.updateTimer || !this.heard()) return
    const wait = Math.max(0, this.lastUpdate + (this.config.minUpdateIntervalMs ?? UPDATE_INTERVAL_MS) - Date.now())
    this.updateTimer = setTimeout(() => {
      this.updateTimer = undefined
      if (this.heard()) void this.send(false, true)
    }, wait)
  }

  close (): Promise<void> {
    this.closing ??= (async () => {
      const announced = this.phase === 'announced'
      this.phase = 'closed'
      for (const [t, onClose] of this.timers) { clearTimeout(t); onClose() }
      this.timers.clear()
      clearTimeout(this.updateTimer)
      this.stopListening()
      this.stopHearingProbes()
      this.stopHearingInterfaces()
      this.responder.close()
      if (announced) {
        const goodbye = this.records().answers.map((r) => ({ ...r, ttl: 0, flush: false }))
        await this.mdns.respond(goodbye).catch((e: Error) => this.log(`mdns: goodbye not sent: ${e.message}`))
      }
      await this.mdns.close()
    })()
    return this.closing
  }
}

/** Starts advertising a node on the LAN (see index.ts). */
export function createAdvertiser (config: AdvertiserConfig, deps: AdvertiserDeps = {}): Advertiser {
  return new NodeAdvertiser(config, deps)
}
