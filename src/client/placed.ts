/**
 * The journal of where this user's client processes sent their tasks lately, one line per task
 * (`AT NODE-ID`), in a folder of the user's own ($XDG_RUNTIME_DIR, else the temp folder, mode
 * 0700). Appends of a line are atomic; the file is emptied when it has grown old or large. Any
 * trouble with it (a folder someone else owns, a read-only disk) turns it off: clients then only
 * draw their first node at random, as they would without it. A process holds the journal (a lock
 * folder beside it) from reading it to noting its choice, so that processes that choose at the same
 * moment choose one after the other.
 */
import { appendFileSync, lstatSync, mkdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { parsePlacements, type Placement } from '../scheduler/placed.js'

/** placements older than this are shown by every node's record long since */
const KEEP_MS = 10_000
const MAX_BYTES = 16 * 1024

function journalFile (): string | undefined {
  try {
    const uid = process.getuid?.() ?? 0
    // os.tmpdir() without loading node:os when $TMPDIR says it (as homeDir() does for $HOME)
    const tmp = process.env.XDG_RUNTIME_DIR || process.env.TMPDIR || (createRequire(import.meta.url)('node:os') as typeof import('node:os')).tmpdir()
    const dir = join(tmp, `rrcloud-${uid}`)
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const st = lstatSync(dir)
    if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) return undefined
    return join(dir, 'placed')
  } catch {
    return undefined
  }
}

let file: string | undefined | null = null
const theFile = () => (file === null ? (file = journalFile()) : file)

/** The placements of the last seconds, by any of this user's clients on this machine. */
export function recentPlacements (now = Date.now()): Placement[] {
  const f = theFile()
  if (!f) return []
  try {
    return parsePlacements(readFileSync(f, 'latin1'), now - KEEP_MS)
  } catch {
    return []
  }
}

/** Takes back the placement noted `at` for node `id`: the task went elsewhere, or took no slot there. */
export function takeBackPlacement (id: string, at: number): void {
  const f = theFile()
  if (!f || !/^[\w:.-]{1,128}$/.test(id)) return
  try {
    appendFileSync(f, `${at} ${id} -\n`, { mode: 0o600 })
  } catch {}
}

/** Notes that a task went to node `id`. */
export function notePlacement (id: string, now = Date.now()): void {
  const f = theFile()
  if (!f || !/^[\w:.-]{1,128}$/.test(id)) return
  try {
    let stale = false
    try {
      const st = statSync(f)
      stale = st.size > MAX_BYTES || now - st.mtimeMs > KEEP_MS
    } catch {}
    if (stale) writeFileSync(f, '', { mode: 0o600 })
    appendFileSync(f, `${now} ${id}\n`, { mode: 0o600 })
  } catch {}
}

/** a lock older than this was left by a process that died holding it */
const STALE_LOCK_MS = 2000
/** how long a process waits for the journal before it chooses without it */
const WAIT_LOCK_MS = 300

export interface HeldJournal {
  /** the placements of the last seconds */
  readonly placed: Placement[]
  /** lets the next process choose */
  release (): void
}

const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

/**
 * Holds the journal while this process chooses (release() once its choice is noted); without the
 * lock after WAIT_LOCK_MS (a process stopped while holding it), the placements are read anyway.
 */
export function holdJournal (now = Date.now()): HeldJournal {
  const f = theFile()
  if (!f) return { placed: [], release () {} }
  const lock = `${f}.lock`
  let held = false
  for (const until = Date.now() + WAIT_LOCK_MS; !held && Date.now() < until;) {
    try {
      mkdirSync(lock, { mode: 0o700 })
      held = true
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') break
      try {
        if (Date.now() - statSync(lock).mtimeMs > STALE_LOCK_MS) rmdirSync(lock)
      } catch {}
      pause(2)
    }
  }
  return {
    placed: recentPlacements(now),
    release () {
      if (!held) return
      held = false
      try { rmdirSync(lock) } catch {}
    },
  }
}
