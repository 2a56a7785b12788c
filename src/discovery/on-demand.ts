// A browser that runs only while someone uses its view of the LAN.
//
// A running browser keeps every peer's records alive: with 4 s TTLs that is a query every ~2 s
// and an answer from each node. A node needs that live view only at times (an events stream that
// shows peers, a farm queue with copies waiting, a stage to place), so it browses then, and stops
// idleMs after the last use. The records it held are dropped when it stops (each peer leaves with
// `down`, 'expired'), and browsing again starts from a fresh query.
import { EventEmitter } from 'node:events'
import { createBrowser, settle, type Browser, type BrowserConfig, type BrowserDeps, type BrowserEvents } from './browser.js'
import type { Peer } from './cache.js'

export interface OnDemandConfig extends BrowserConfig {
  /** how long browsing goes on after the last use (default 60 s) */
  idleMs?: number
  /** settled(): how long the first answers are awaited at most when browsing starts (default 1000 ms) */
  timeoutMs?: number
  /** settled(): returns once nobody new has answered for this long (default 250 ms, as discover) */
  settleMs?: number
}

export interface OnDemandDeps extends BrowserDeps {
  /** the browser to run (default createBrowser) */
  createBrowser?: (config: BrowserConfig, deps: BrowserDeps) => Browser
}

export interface OnDemandBrowser extends Browser {
  /** the peers known now; starts browsing when it was not (then this is empty, and `up` follows) */
  peers (): Peer[]
  /** the peers once browsing has heard the LAN: at once when it runs already, else after settling */
  settled (): Promise<Peer[]>
  /** browses until the returned function is called (then idleMs more); calling it twice is harmless */
  hold (): () => void
  /** whether a browser runs now */
  readonly browsing: boolean
}

class OnDemand extends EventEmitter<BrowserEvents> implements OnDemandBrowser {
  readonly ready = Promise.resolve()
  private inner?: Browser
  private settling?: Promise<void>
  private holds = 0
  private lastUse = 0
  private idleTimer?: NodeJS.Timeout
  private closed = false
  private readonly idleMs: number

  constructor (private readonly config: OnDemandConfig, private readonly deps: OnDemandDeps) {
    super()
    this.idleMs = config.idleMs ?? 60_000
  }

  get browsing (): boolean { return this.inner !== undefined }

  /** a use now: browsing starts if it was not, and goes on for idleMs at least */
  private use (): Browser | undefined {
    if (this.closed) return undefined
    this.lastUse = Date.now()
    if (!this.inner) {
      const b = this.inner = (this.deps.createBrowser ?? createBrowser)({ interface: this.config.interface, graceMs: this.config.graceMs }, this.deps)
      b.on('up', (p) => this.emit('up', p))
      b.on('update', (p, prev) => this.emit('update', p, prev))
      b.on('down', (p, reason) => this.emit('down', p, reason))
      this.settling = settle(b, this.config.timeoutMs ?? 1000, this.config.settleMs ?? 250).catch(() => {})
    }
    if (this.holds === 0 && !this.idleTimer) this.idleLater(this.idleMs)
    return this.inner
  }

  private idleLater (ms: number): void {
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined
      if (this.holds > 0 || !this.inner) return
      const left = this.lastUse + this.idleMs - Date.now()
      if (left > 0) this.idleLater(left)
      else this.stopBrowsing()
    }, ms)
    this.idleTimer.unref()
  }

  private stopBrowsing (): void {
    const b = this.inner
    if (!b) return
    this.inner = this.settling = undefined
    const known = b.peers()
    b.removeAllListeners()
    void b.close()
    for (const p of known) this.emit('down', p, 'expired')
  }

  peers (): Peer[] {
    return this.use()?.peers() ?? []
  }

  async settled (): Promise<Peer[]> {
    const b = this.use()
    if (!b) return []
    await this.settling
    return b.peers()
  }

  hold (): () => void {
    this.holds++
    clearTimeout(this.idleTimer)
    this.idleTimer = undefined
    this.use()
    let held = true
    return () => {
      if (!held) return
      held = false
      this.holds--
      this.lastUse = Date.now()
      if (this.holds === 0 && this.inner && !this.closed) this.idleLater(this.idleMs)
    }
  }

  query (): void {
    this.use()?.query()
  }

  close (): Promise<void> {
    this.closed = true
    clearTimeout(this.idleTimer)
    const b = this.inner
    this.inner = this.settling = undefined
    return b?.close() ?? Promise.resolve()
  }
}

/** A browser that starts on first use and stops idleMs after the last (see above). */
export function createOnDemandBrowser (config: OnDemandConfig = {}, deps: OnDemandDeps = {}): OnDemandBrowser {
  return new OnDemand(config, deps)
}
