import { Flags } from '@oclif/core'
import { ClientCommand } from '../client/command.js'
import { table } from '../client/format.js'
import { mdnsEnabled, type LanPeer } from '../client/lan.js'

/** What `rrcloud peers --json` prints for each node. */
export interface PeerView {
  name: string
  id: string
  host: string
  address: string
  port: number
  url: string
  services: string[]
  load: number
  cores?: number
  slots: number
  free: number
  queue: number
  printers: Array<{ name: string; port: string; state?: string }>
  tokenRequired: boolean
  version?: string
  ageMs: number
  via: LanPeer['via']
  local: boolean
  error?: string
}

const view = (p: LanPeer): PeerView => ({
  name: p.name, id: p.id, host: p.host, address: p.address, port: p.port, url: p.url, services: p.services,
  load: p.load, cores: p.cores, slots: p.slots, free: p.free, queue: p.queue, printers: p.printers ?? [],
  tokenRequired: Boolean(p.tokenRequired), version: p.version, ageMs: p.ageMs, via: p.via, local: Boolean(p.local),
  ...(p.error ? { error: p.error } : {}),
})

const age = (ms: number) => ms < 1000 ? 'now' : ms < 60_000 ? `${Math.round(ms / 1000)}s` : `${Math.round(ms / 60_000)}m`

export function peersTable (peers: PeerView[], where = ''): string {
  if (!peers.length) return `no nodes found${where ? ` (looked at ${where})` : ''}\n`
  return table(['NAME', 'HOST', 'ADDRESS', 'SERVICES', 'LOAD', 'FREE/SLOTS', 'QUEUE', 'PRINTERS', 'VERSION', 'SEEN'], peers.map((p) => [
    p.name + (p.local ? ' (here)' : ''),
    p.host,
    p.address.includes(':') ? `[${p.address}]:${p.port}` : `${p.address}:${p.port}`,
    p.error ? `unreachable: ${p.error}` : p.services.join(','),
    p.error ? '' : p.load.toFixed(2),
    p.error ? '' : `${p.free}/${p.slots}`,
    p.error ? '' : String(p.queue),
    p.printers.map((x) => `${x.name}=${x.port}${x.state ? ` (${x.state})` : ''}`).join(',') || '-',
    (p.version ?? '?') + (p.tokenRequired ? ' (token)' : ''),
    age(p.ageMs) + (p.via === 'static' ? ' (named)' : ''),
  ]))
}

const sortPeers = (a: PeerView, b: PeerView) => Number(b.local) - Number(a.local) || a.name.localeCompare(b.name)

export default class Peers extends ClientCommand {
  static summary = 'List the rrcloud nodes on the LAN: services, load, free slots, queue, printers.'
  static description = 'Nodes are found with mDNS (DNS-SD _rrcloud._tcp): a node running on this machine answers from its own view of the LAN; ' +
    'otherwise the LAN is asked and answers are collected for a fraction of a second. Nodes named with --s or in rrcloudrc are listed too.' +
    '\n\nRRCLOUD_MDNS=off keeps the client off mDNS; --interface (or RRCLOUD_INTERFACE) picks the interface to ask on; ' +
    "RRCLOUD_LOCAL=HOST:PORT says where this machine's node listens when not on port 4468."
  static enableJsonFlag = true
  static examples = [
    '<%= config.bin %> peers',
    '<%= config.bin %> peers --json',
    '<%= config.bin %> peers --watch',
    '<%= config.bin %> peers --interface eth1',
  ]

  static flags = {
    watch: Flags.boolean({ char: 'w', summary: 'keep watching: redraw (or, with --json, print one JSON line per change) as nodes come, change and go' }),
    interface: Flags.string({ summary: 'network interface (name or IPv4 address) to look on', env: 'RRCLOUD_INTERFACE', helpValue: 'IFACE' }),
  }

  async run (): Promise<PeerView[]> {
    const { flags } = await this.parse(Peers)
    const ctx = this.client(flags)
    if (flags.watch) return this.watch(flags.interface, flags.json ?? false, () => ctx.source.peers(true))
    const list = (await ctx.source.peers()).map(view).sort(sortPeers)
    if (!flags.json) process.stdout.write(peersTable(list, ctx.source.origin()))
    return list
  }

  /** Follows the LAN until Ctrl-C: a browser of its own when mDNS is on, else looks every 2 s. */
  private async watch (iface: string | undefined, json: boolean, look: () => Promise<LanPeer[]>): Promise<never> {
    const tty = process.stdout.isTTY && !json
    let last = ''
    const show = (peers: PeerView[], events: Array<{ event: string; peer: PeerView }>) => {
      if (json) {
        for (const e of events) process.stdout.write(JSON.stringify({ event: e.event, at: new Date().toISOString(), ...e.peer }) + '\n')
        return
      }
      const text = peersTable(peers.sort(sortPeers))
      if (tty) {
        process.stdout.write('\x1b[H\x1b[2J' + `rrcloud peers  ${new Date().toLocaleTimeString()}  (Ctrl-C to stop)\n\n` + text)
      } else if (events.length) {
        for (const e of events) process.stdout.write(`${new Date().toISOString()} ${e.event} ${e.peer.name} ${e.peer.url} free ${e.peer.free}/${e.peer.slots} queue ${e.peer.queue}\n`)
      } else if (text !== last) {
        process.stdout.write(text)
      }
      last = text
    }
    const stop = new Promise<void>((resolve) => process.once('SIGINT', resolve))
    if (!mdnsEnabled()) {
      let prev = new Map<string, PeerView>()
      for (;;) {
        const now = new Map((await look()).map((p) => [p.id, view(p)]))
        const events = [
          ...[...now.values()].filter((p) => !prev.has(p.id)).map((peer) => ({ event: 'up', peer })),
          ...[...now.values()].filter((p) => prev.has(p.id) && JSON.stringify({ ...p, ageMs: 0 }) !== JSON.stringify({ ...prev.get(p.id), ageMs: 0 })).map((peer) => ({ event: 'update', peer })),
          ...[...prev.values()].filter((p) => !now.has(p.id)).map((peer) => ({ event: 'down', peer })),
        ]
        prev = now
        show([...now.values()], events)
        if (await Promise.race([stop.then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 2000))])) process.exit(0)
      }
    }
    const { createBrowser } = await import('../discovery/index.js')
    const { fromDiscovered } = await import('../client/lan.js')
    const browser = createBrowser({ interface: iface })
    const all = () => browser.peers().map((p) => fromDiscovered(p)).filter((p): p is LanPeer => Boolean(p)).map(view)
    const on = (event: string) => (p: Parameters<typeof fromDiscovered>[0]) => {
      const peer = fromDiscovered(p)
      if (peer) show(all(), [{ event, peer: view(peer) }])
    }
    browser.on('up', on('up'))
    browser.on('update', on('update'))
    browser.on('down', on('down'))
    await browser.ready
    show(all(), [])
    const tick = setInterval(() => { if (tty) show(all(), []) }, 1000)
    await stop
    clearInterval(tick)
    await browser.close()
    process.exit(0)
  }
}
