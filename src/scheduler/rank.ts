/** What the scheduler knows of a peer: a snapshot from discovery, a static server list or both. */
export interface PeerInfo {
  id: string
  name: string
  url: string
  /** this machine's own node */
  local?: boolean
  services: string[]
  /** load average per core */
  load: number
  slots: number
  free: number
  queue: number
  printers?: Array<{ name: string; port: string; state?: string }>
  tokenRequired?: boolean
  /** false when the last attempt could not connect */
  reachable?: boolean
}

export interface TaskNeeds {
  /** a printer by name or by port path (`/dev/ttyUSB0`, as in the seed) */
  printer?: string
}

export interface RankOptions {
  now?: number
  /** peer id → time (ms) until which it is avoided after a failure */
  avoid?: ReadonlyMap<string, number>
  /** scores closer than this count as equal, and the local node wins the tie */
  tieMargin?: number
}

export interface Candidate { peer: PeerInfo; score: number }

export const hasPrinter = (p: PeerInfo, printer: string) =>
  (p.printers ?? []).some((x) => x.name === printer || x.port === printer)

/**
 * Expected wait of one more task, in task-lengths: tasks ahead of it per slot, so that equal
 * tasks spread in proportion to slots; a busy CPU slows even a free slot down.
 */
export function score (p: PeerInfo): number {
  const slots = Math.max(1, p.slots)
  const inSystem = p.queue + Math.max(0, slots - p.free)
  return (inSystem + 1) / slots + 0.25 * Math.max(0, p.load)
}

/**
 * Orders the peers that can take a task, best first. Pure: no I/O, no clock unless given.
 * Printer tasks go only to the node that has the printer, and queue there whatever its load.
 */
export function rank (service: string, needs: TaskNeeds, peers: readonly PeerInfo[], opts: RankOptions = {}): Candidate[] {
  const now = opts.now ?? 0
  const margin = opts.tieMargin ?? 0.05
  const eligible = peers.filter((p) =>
    p.services.includes(service) &&
    p.reachable !== false &&
    !((opts.avoid?.get(p.id) ?? -Infinity) > now) &&
    (needs.printer === undefined || hasPrinter(p, needs.printer)))
  return eligible
    .map((peer) => ({ peer, score: score(peer) }))
    .sort((a, b) => {
      if (Math.abs(a.score - b.score) > margin) return a.score - b.score
      if (Boolean(a.peer.local) !== Boolean(b.peer.local)) return a.peer.local ? -1 : 1
      return a.score - b.score || a.peer.name.localeCompare(b.peer.name)
    })
}

/** The snapshot as it will be once a task was handed to `id`: lets one client spread a batch. */
export function afterSubmit (peers: readonly PeerInfo[], id: string): PeerInfo[] {
  return peers.map((p) => {
    if (p.id !== id) return p
    return p.free > 0 ? { ...p, free: p.free - 1 } : { ...p, queue: p.queue + 1 }
  })
}
