import { closeSync, openSync, read, writev } from 'node:fs'

/**
 * Files read and written with plain fs calls rather than node's file streams: loading those, and
 * the fs/promises and readline modules they bring, would cost a short `SERVICE.cloud` run more
 * than its upload and download of a small file take.
 */

const done = <T>(fn: (cb: (err: NodeJS.ErrnoException | null, value: T) => void) => void) =>
  new Promise<T>((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))))

/** A file's bytes, in pieces of up to `size` bytes (each a buffer of its own). */
export async function * pieces (path: string, size = 1 << 20): AsyncGenerator<Buffer> {
  const fd = openSync(path, 'r')
  try {
    for (;;) {
      const buf = Buffer.allocUnsafe(size)
      const n = await done<number>((cb) => read(fd, buf, 0, size, null, cb))
      if (n === 0) return
      yield n < size ? buf.subarray(0, n) : buf
    }
  } finally {
    closeSync(fd)
  }
}

/** Writes all of `bufs`, again where a write took only part of them. */
async function writeAll (fd: number, bufs: Buffer[]): Promise<void> {
  while (bufs.length) {
    let n = await done<number>((cb) => writev(fd, bufs, cb))
    while (bufs.length && n >= bufs[0].length) n -= bufs.shift()!.length
    if (n > 0) bufs[0] = bufs[0].subarray(n)
  }
}

/**
 * Writes what `src` yields into a file (created or emptied), about a MiB per write. `src` is read
 * from the call on (the file is opened at once), and not while a write is under way: a fast
 * source waits for a slow disk.
 */
export async function intoFile (src: AsyncIterable<Buffer>, path: string): Promise<void> {
  const fd = openSync(path, 'w')
  try {
    let batch: Buffer[] = []
    let bytes = 0
    for await (const chunk of src) {
      batch.push(chunk)
      bytes += chunk.length
      if (bytes < 1 << 20) continue
      await writeAll(fd, batch)
      batch = []
      bytes = 0
    }
    await writeAll(fd, batch)
  } finally {
    closeSync(fd)
  }
}
