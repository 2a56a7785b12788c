/**
 * Nodes that just failed this process (unreachable, refusing, 5xx), by URL: the scheduler ranks
 * them last for a while so that a batch does not keep knocking on a dead node.
 */
const avoided = new Map<string, number>()

export const AVOID_MS = 30_000

export function avoid (url: string, ms = AVOID_MS): void {
  avoided.set(url, Date.now() + ms)
}

/** Until when (ms since the epoch) the node is avoided, or 0. */
export function avoidedUntil (url: string, now = Date.now()): number {
  const until = avoided.get(url) ?? 0
  return until > now ? until : 0
}
