// A task's folder (tasks/run/ID): made afresh before its tool starts, removed once it exits.
// The spawn helper does both, so that the node's event loop spends no time on them; file
// system only, so that the helper stays small.
import { chmodSync, chownSync, linkSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

/** An input file of a task, and the name it has in the task's folder. */
export interface RunInput { host: string; name: string }

export interface RunFolder {
  dir: string
  inputs: RunInput[]
  /** where an input cannot be linked: an empty file to mount it on (bwrap), else a symbolic link */
  mountPoints: boolean
  /** the tools' user, when they run as a user of their own: the folder is theirs */
  owner?: [uid: number, gid: number]
  /** the tool's output, moved out of the folder before it goes: `from` in the folder, `to` anywhere on its file system */
  keep?: { from: string, to: string }
}

/**
 * Makes a task's folder afresh: its inputs under their names, which may be paths, in folders the
 * tool's user may read; the folder itself owned by that user. Each input is a hard link of its
 * file (bwrap mounts the input on it, read-only): a link makes no new inode, which on some file
 * systems (ext4 without a journal) costs far more than the link, and removing it frees none.
 */
export function prepareFolder (f: RunFolder): void {
  rmSync(f.dir, { recursive: true, force: true })
  mkdirSync(f.dir, { recursive: true })
  const folders = new Set<string>()
  for (const i of f.inputs) {
    const at = join(f.dir, i.name)
    for (let d = dirname(at); d !== f.dir && !folders.has(d); d = dirname(d)) folders.add(d)
    if (dirname(at) !== f.dir) mkdirSync(dirname(at), { recursive: true })
    try {
      linkSync(i.host, at)
    } catch {
      if (f.mountPoints) writeFileSync(at, '')
      else symlinkSync(i.host, at)
    }
  }
  for (const d of [f.dir, ...folders]) {
    chmodSync(d, 0o755)
    if (f.owner) chownSync(d, f.owner[0], f.owner[1])
  }
}
