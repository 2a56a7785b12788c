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
  printers?: Array<{ name: string; port: string; state?: string; groups?: string[] }>
  tokenRequired?: boolean
  /** false when the last attempt could not connect */
  reachable?: boolean
}

export interface TaskNeeds {
  /** a printer by name or by port path (`/dev/ttyUSB0`, as in the seed) */
  printer?: string
  /** a printer of this farm group (a farm job goes to a node that has one) */
  group?: string
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

export const hasGroup = (p: PeerInfo, group: string) =>
  (p.printers ?? []).some((x) => (x.groups ?? []).includes(group))

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
    (needs.printer === undefined || hasPrinter(p, needs.printer)) &&
    (needs.group === undefined || hasGroup(p, needs.group)))
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

/**
 * Spreads the first choice of clients that look at the same moment. They all see the same
 * snapshot and would all take its best node; instead, when the best has a free slot, one draw
 * among the candidates that have one, with chances in proportion to 1 / score: on idle nodes of
 * 1, 2 and 3 slots that is 1/6, 2/6 and 3/6, the split one batch would make. When no candidate
 * has a free slot the order stays as ranked: a task that must wait goes where it waits least.
 * The chosen candidate moves to the front; the rest keep their order. The local node keeps first
 * place when it ranked first (it was as good, and costs no network). Pure: `random` is in [0, 1).
 */
export function spread (ranked: readonly Candidate[], random: number): Candidate[] {
  if (ranked.length < 2 || ranked[0].peer.local || ranked[0].peer.free <= 0) return [...ranked]
  const close = ranked.filter((c) => c.peer.free > 0)
  const weights = close.map((c) => 1 / Math.max(c.score, 1e-6))
  let x = Math.min(Math.max(random, 0), 1 - Number.EPSILON) * weights.reduce((a, b) => a + b, 0)
  let chosen = close[close.length - 1]
  for (let i = 0; i < close.length; i++) {
    x -= weights[i]
    if (x < 0) { chosen = close[i]; break }
  }
  return [chosen, ...ranked.filter((c) => c !== chosen)]
}
