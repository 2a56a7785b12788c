import { closeSync, open, writeSync } from 'node:fs'

/** Writes all of `data` to an open file. */
export function writeAll (fd: number, data: Uint8Array) {
  for (let at = 0; at < data.length;) at += writeSync(fd, data, at, data.length - at)
}

/**
 * Writes a small file: opened by the thread pool (a new file's inode may cost a millisecond of the
 * kernel's time), then written and closed in the event loop, which for a few KiB costs less than
 * the two more trips through the thread pool `fs.writeFile` takes.
 */
export function writeSmallFile (path: string, data: string | Uint8Array, flags = 'w'): Promise<void> {
  return new Promise((resolve, reject) => {
    open(path, flags, (err, fd) => {
      if (err) return reject(err)
      try {
        writeAll(fd, typeof data === 'string' ? Buffer.from(data) : data)
      } catch (e) {
        reject(e)
        return
      } finally {
        closeSync(fd)
      }
      resolve()
    })
  })
}
