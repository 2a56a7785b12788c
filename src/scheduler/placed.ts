/**
 * Placements that a snapshot of the LAN cannot show yet. Clients started at once on one machine (a
 * shell loop of `slic3r.cloud ... &`, `make -j`) each look at the LAN once, within the same second,
 * and see the same free slots: each would count only its own tasks against them. Each records where
 * it sent a task (src/client/placed.ts keeps the journal); the others count those placements
 * against their snapshot until the nodes' own records show them. Pure.
 */
import { afterSubmit, type PeerInfo } from './rank.js'

export interface Placement {
  /** when the task was sent, ms since the epoch */
  at: number
  /** the node's id */
  id: string
}

/** How long after a placement a node's record is taken to show it: the upload, then its next announcement (at most every 500 ms). */
export const SHOWN_AFTER_MS = 700

/**
 * The snapshot with each placement it cannot show counted as a task sent there: those made after
 * the peer's record was current, less the time a record takes to show one.
 */
export function withPlacements<P extends PeerInfo> (peers: readonly P[], placed: readonly Placement[], currentAt: (p: P) => number): P[] {
  let out = [...peers]
  for (const x of placed) {
    const p = out.find((q) => q.id === x.id)
    if (p && x.at > currentAt(p) - SHOWN_AFTER_MS) out = afterSubmit(out, x.id) as P[]
  }
  return out
}

/**
 * The journal's lines (`AT ID`), the recent ones only; `AT ID -` takes back the placement `AT ID`
 * (the task went elsewhere, or took no slot); lines that do not parse are skipped.
 */
export function parsePlacements (text: string, since: number): Placement[] {
  const out: Placement[] = []
  for (const line of text.split('\n')) {
    const m = /^(\d{10,16}) ([\w:.-]{1,128})( -)?$/.exec(line)
    if (!m || Number(m[1]) < since) continue
    const at = Number(m[1])
    if (!m[3]) out.push({ at, id: m[2] })
    else {
      const i = out.findIndex((x) => x.at === at && x.id === m[2])
      if (i >= 0) out.splice(i, 1)
    }
  }
  return out
}
