import { closeSync, openSync, readSync, writevSync } from 'node:fs'

/**
 * Files read and written by the client, with synchronous fs calls: node's file streams (and the
 * fs/promises and readline modules they load) and the first asynchronous fs call (which starts
 * libuv's thread pool) would each cost a short `SERVICE.cloud` run more than its upload and
 * download of a small file take. A run does one thing at a time: a read or a write of a MiB
 * holding up the event loop for a moment costs it nothing.
 */

/** A file's bytes, in pieces of up to `size` bytes (each a buffer of its own). */
export function * pieces (path: string, size = 1 << 20): Generator<Buffer> {
  const fd = openSync(path, 'r')
  try {
    for (;;) {
      const buf = Buffer.allocUnsafe(size)
      const n = readSync(fd, buf, 0, size, null)
      if (n === 0) return
      yield n < size ? buf.subarray(0, n) : buf
    }
  } finally {
    closeSync(fd)
  }
}

/** Writes all of `bufs`, again where a write took only part of them. */
function writeAll (fd: number, bufs: Buffer[]): void {
  while (bufs.length) {
    let n = writevSync(fd, bufs)
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
      writeAll(fd, batch)
      batch = []
      bytes = 0
    }
    writeAll(fd, batch)
  } finally {
    closeSync(fd)
  }
}
