import { Flags } from '@oclif/core'
import { ClientCommand } from '../client/command.js'
import { table } from '../client/format.js'
import { mdnsEnabled, type LanPeer } from '../client/lan.js'
import { followPeers, type PeerChange } from '../client/watch.js'

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
  }

  async run (): Promise<PeerView[] | undefined> {
    const { flags } = await this.parse(Peers)
    const ctx = this.client(flags)
    // --watch --json prints JSON lines as it goes, nothing more at the end
    if (flags.watch) return void await this.watch(flags.interface, flags.json ?? false, () => ctx.source.peers(true))
    const list = (await ctx.source.peers()).map(view).sort(sortPeers)
    if (!flags.json) process.stdout.write(peersTable(list, ctx.source.looked()))
    return list
  }

  /** Follows the LAN until Ctrl-C. */
  private async watch (iface: string | undefined, json: boolean, look: () => Promise<LanPeer[]>): Promise<void> {
    const tty = process.stdout.isTTY && !json
    let last = ''
    const show = (peers: LanPeer[], changes: PeerChange[]) => {
      const stamp = new Date().toISOString()
      if (json) {
        for (const c of changes) process.stdout.write(JSON.stringify({ event: c.event, at: stamp, ...view(c.peer) }) + '\n')
        return
      }
      const text = peersTable(peers.map(view).sort(sortPeers))
      if (tty) {
        process.stdout.write('\x1b[H\x1b[2J' + `rrcloud peers  ${new Date().toLocaleTimeString()}  (Ctrl-C to stop)\n\n` + text)
      } else if (changes.length) {
        for (const { event, peer: p } of changes) process.stdout.write(`${stamp} ${event} ${p.name} ${p.url} free ${p.free}/${p.slots} queue ${p.queue}\n`)
      } else if (text !== last) {
        process.stdout.write(text)
      }
      last = text
    }
    const stop = new AbortController()
    const abort = () => stop.abort()
    process.once('SIGINT', abort)
    try {
      await followPeers({ mdns: mdnsEnabled(), interface: iface, look, signal: stop.signal }, show)
    } finally {
      process.off('SIGINT', abort)
    }
  }
}
