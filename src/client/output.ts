import { accessSync, constants, statSync } from 'node:fs'
import { dirname } from 'node:path'
import { usage } from './errors.js'

/** Fails before any work is done when the result could not be written where the user asked. */
export function checkWritable (dest: string): void {
  let st
  try { st = statSync(dest) } catch {}
  if (st?.isDirectory()) throw usage(`output ${dest} is a folder: name a file, e.g. -o ${dest.replace(/\/$/, '')}/out.stl`)
  const dir = dirname(dest)
  let d
  try { d = statSync(dir) } catch {}
  if (!d?.isDirectory()) throw usage(`cannot write ${dest}: folder ${dir} does not exist`)
  try {
    accessSync(dir, constants.W_OK)
    if (st) accessSync(dest, constants.W_OK)
  } catch {
    throw usage(`cannot write ${dest}: permission denied; choose another place with -o FILE`)
  }
}

/**
 * A destination that exists but is no regular file (/dev/null, /dev/stdout, a fifo) is written into;
 * renaming a finished file over it would replace the device.
 */
export function isSpecial (dest: string): boolean {
  try {
    const st = statSync(dest)
    return !st.isFile() && !st.isDirectory()
  } catch {
    return false
  }
}
