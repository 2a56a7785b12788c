/**
 * Where the data is: a node that holds the result of a task (a cache hit) does it at once, and one
 * that holds its large files saves their transfer. What nodes answered about a task's files reorders
 * the candidates the load ranking chose (./rank.ts): hits first, then by the bytes each would still
 * need, counted in steps of `stepBytes` so that a few small files missing here or there leave the
 * load order as it was.
 */
export interface DataAnswer {
  /** the node holds the task's result */
  hit: boolean
  /** bytes of the task's files the node lacks */
  missingBytes: number
}

/** 8 MiB: about a tenth of a second of a LAN */
export const DATA_STEP = 8 << 20

/**
 * Candidates in the order to try them. `answers[i]` is what `candidates[i]` said (undefined: it did
 * not answer in time; it is taken to lack everything, `totalBytes`). Stable: equals keep their order.
 */
export function preferData<T> (candidates: T[], answers: Array<DataAnswer | undefined>, totalBytes: number, stepBytes = DATA_STEP): T[] {
  const key = (i: number) => {
    const a = answers[i]
    if (a?.hit) return -1
    return Math.floor((a ? a.missingBytes : totalBytes) / stepBytes)
  }
  return candidates.map((c, i) => ({ c, i, k: key(i) })).sort((a, b) => a.k - b.k || a.i - b.i).map((x) => x.c)
}
