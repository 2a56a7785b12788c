// Browses `_rrcloud._tcp` and keeps a live view of the peers.
//
// Liveness comes from the records' TTLs: nodes publish PTR/SRV/TXT with a short TTL (4 s), the
// browser re-asks (one PTR query, RFC 6762 §5.2 cache maintenance) when a record has lived half
// its TTL, and drops a peer whose records ran out. A node that died is gone within TTL + grace
// (4.5 s) while a live one costs one query and one answer per TTL/2 on the LAN, whatever the
// number of browsers (a query seen from another browser counts as ours). bonjour-service's own
// Browser never expires anything, which is why it is not used.
import { EventEmitter } from 'node:events'
import debug from 'debug'
import { openMdns, resolveInterface, type Mdns } from './mdns.js'
import { eqName, SERVICE_TYPE } from './names.js'
import { PeerCache, type Peer } from './cache.js'

const debugLog = debug('rrcloud:discovery')
/**
 * bytes of known answers in one query: RFC 6762 §17 allows 9,000 bytes in all (IP fragments a
 * packet beyond the link's MTU); a query that lists fewer has the rest of the LAN answer it
 */
const KNOWN_ANSWERS_BYTES = 8000

export interface BrowserConfig {
  /** interface name or IPv4 address to browse on (default: all) */
  interface?: string
  /** how long past its TTL a silent peer is kept */
  graceMs?: number
}

export interface BrowserDeps {
  log?: (line: string) => void
}

export interface BrowserEvents {
  up: [peer: Peer]
  /** TXT (load, slots, ...), port or addresses changed */
  update: [peer: Peer, previous: Peer]
  down: [peer: Peer, reason: 'goodbye' | 'expired']
}

export interface Browser extends EventEmitter<BrowserEvents> {
  /** resolves once the socket is bound and the first query is sent */
  readonly ready: Promise<void>
  /** the peers known now */
  peers (): Peer[]
  /** asks the LAN for peers now */
  query (): void
  close (): Promise<void>
}

const TICK_MS = 250
/** refresh queries are spread over this share of the TTL after its half: 0.4 s of 4 s, more than a tick */
const REFRESH_SPREAD = 0.1
const RESCAN_MAX_MS = 60_000

class PeerBrowser extends EventEmitter<BrowserEvents> implements Browser {
  readonly ready: Promise<void>
  private readonly cache: PeerCache
  private readonly mdns: Mdns
  private readonly stop: Array<() => void> = []
  private lastQueryAt = 0
  private nextScanAt = Infinity
  private scanEveryMs = 1000
  /** how much of a TTL past its half this browser waits before it asks (RFC 6762 §5.2 variance) */
  private readonly late = Math.random() * REFRESH_SPREAD
  private tick?: NodeJS.Timeout
  private closing?: Promise<void>
  private readonly log: (line: string) => void

  constructor (config: BrowserConfig, deps: BrowserDeps) {
    super()
    this.log = deps.log ?? ((l) => debugLog(l))
    this.cache = new PeerCache(config.graceMs)
    this.mdns = openMdns(config.interface ? resolveInterface(config.interface) : undefined, this.log)
    this.stop.push(this.mdns.onResponse((packet, rinfo) => {
      this.emitAll(this.cache.apply([...packet.answers, ...packet.additionals], rinfo.address, Date.now()))
    }))
    // an interface that came up later (a cable plugged in): ask there at once
    this.stop.push(this.mdns.onInterfaces(() => this.query()))
    // RFC 6762 §7.3: someone else's identical question gets us the same answers
    this.stop.push(this.mdns.onQuery((packet) => {
      if (packet.questions.some((q) => q.type === 'PTR' && eqName(q.name, SERVICE_TYPE))) this.lastQueryAt = Date.now()
    }))
    this.ready = this.mdns.ready.then(() => {
      if (this.closing) return
      this.query()
      this.nextScanAt = Date.now() + this.scanEveryMs
      this.tick = setInterval(() => this.onTick(), TICK_MS)
    })
    this.ready.catch((e: Error) => this.log(`mdns: not browsing: ${e.message}`))
  }

  private emitAll (events: ReturnType<PeerCache['apply']>): void {
    for (const ev of events) {
      debugLog('%s %s', ev.type, ev.peer.name)
      if (ev.type === 'up') this.emit('up', ev.peer)
      else if (ev.type === 'update') this.emit('update', ev.peer, ev.previous)
      else {
        // a peer that fell silent may have lost a few packets only: look again soon
        if (ev.reason === 'expired') this.rescanSoon()
        this.emit('down', ev.peer, ev.reason)
      }
    }
  }

  private rescanSoon (): void {
    this.scanEveryMs = 1000
    this.nextScanAt = Math.min(this.nextScanAt, Date.now() + this.scanEveryMs)
  }

  private onTick (): void {
    const now = Date.now()
    this.emitAll(this.cache.expire(now))
    if (now >= this.nextScanAt) {
      // continuous querying for new peers, backing off to once a minute (RFC 6762 §5.2); peers
      // announce themselves when they start, so this only covers lost announcements
      this.scanEveryMs = Math.min(this.scanEveryMs * 2, RESCAN_MAX_MS)
      this.nextScanAt = now + this.scanEveryMs
      this.query()
    } else if (this.cache.refreshDue(now, this.lastQueryAt, this.late)) {
      this.query()
    }
  }

  peers (): Peer[] {
    return this.cache.peers(Date.now())
  }

  query (): void {
    const now = this.lastQueryAt = Date.now()
    // RFC 6762 §7.1: the peers heard lately are listed, and do not answer again (in one packet: as
    // many as fit in KNOWN_ANSWERS_BYTES; the rest answer)
    let room = KNOWN_ANSWERS_BYTES
    const known = this.cache.knownAnswers(now).sort((a, b) => b.ttl - a.ttl)
      // a PTR as the codec writes it: the service type's name (21), type, class, TTL and length
      // (10), the instance's name (its labels' lengths and a root byte beside its text)
      .filter(({ fqdn }) => (room -= 33 + Buffer.byteLength(fqdn)) >= 0)
      .map(({ fqdn, ttl }) => ({ name: SERVICE_TYPE, type: 'PTR' as const, ttl, data: fqdn }))
    this.mdns.send({ type: 'query', questions: [{ name: SERVICE_TYPE, type: 'PTR' }], answers: known })
      .catch((e: Error) => this.log(`mdns: query not sent: ${e.message}`))
  }

  close (): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.tick)
      for (const s of this.stop) s()
      await this.mdns.close()
    })()
    return this.closing
  }
}

/** Starts browsing for peers (see index.ts). */
export function createBrowser (config: BrowserConfig = {}, deps: BrowserDeps = {}): Browser {
  return new PeerBrowser(config, deps)
}

export interface DiscoverOptions {
  /** how long answers are collected at most (default 400 ms) */
  timeoutMs?: number
  /**
   * returns early once at least one peer has answered and no new one for this long (default
   * 250 ms: answers from the LAN come within a few ms, avahi delays its own by 20–120 ms, and a
   * node busy starting up may take longer);
   * 0 always waits the whole timeoutMs
   */
  settleMs?: number
  interface?: string
}

export interface DiscoverDeps extends BrowserDeps {
  /** the browser to ask through (default createBrowser) */
  createBrowser?: (config: BrowserConfig, deps: BrowserDeps) => Browser
}

/** One-shot discovery: asks the LAN and collects answers until they have settled (see settle). */
export async function discover (opts: DiscoverOptions = {}, deps: DiscoverDeps = {}): Promise<Peer[]> {
  const browser = (deps.createBrowser ?? createBrowser)({ interface: opts.interface }, deps)
  try {
    await settle(browser, opts.timeoutMs ?? 400, opts.settleMs ?? 250)
    return browser.peers()
  } finally {
    await browser.close()
  }
}

/**
 * Resolves once a browser that has just started has heard the LAN: someone answered, then nobody
 * new for settleMs (0: never early), or timeoutMs at most; asks once more half-way if nobody has
 * answered yet (a lost packet should not cost a whole retry).
 */
export async function settle (browser: Browser, timeoutMs: number, settleMs: number): Promise<void> {
  const timers: NodeJS.Timeout[] = []
  let onUp = (): void => {}
  try {
    await browser.ready
    await new Promise<void>((resolve) => {
      let quiet: NodeJS.Timeout | undefined
      onUp = () => {
        if (settleMs <= 0) return
        clearTimeout(quiet)
        quiet = setTimeout(resolve, settleMs)
        timers.push(quiet)
      }
      browser.on('up', onUp)
      if (browser.peers().length > 0) onUp()
      timers.push(setTimeout(() => { if (browser.peers().length === 0) browser.query() }, timeoutMs / 2))
      // answers that came while this process had no CPU (a busy machine) wait in the socket: let
      // the event loop read them (poll phase) before giving up (check phase)
      timers.push(setTimeout(() => setImmediate(resolve), timeoutMs))
    })
  } finally {
    for (const t of timers) clearTimeout(t)
    browser.off('up', onUp)
  }
}
