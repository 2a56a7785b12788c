import { createReadStream, statSync } from 'node:fs'
import { basename } from 'node:path'

/** A file as form-data-encoder (and so got) takes it: read from disk, 1 MiB at a time, while the body is sent. */
class DiskFile {
  readonly [Symbol.toStringTag] = 'File'
  readonly type = 'application/octet-stream'
  constructor (readonly path: string, readonly name: string, readonly size: number, readonly lastModified: number) {}
  stream () { return createReadStream(this.path, { highWaterMark: 1 << 20 }) }
}

/**
 * The smallest FormData that form-data-encoder accepts. Node's own FormData would do, but a file
 * in it is a Blob read through a web stream in 64 KiB pieces: twice the CPU of an fs stream, and
 * loading it costs start-up time.
 */
export class StreamingForm {
  readonly [Symbol.toStringTag] = 'FormData'
  readonly #entries: Array<[string, string | DiskFile]> = []

  append (name: string, value: string): void {
    this.#entries.push([name, value])
  }

  /** Adds a file by path; its size is fixed now, so the request can say its length up front. */
  appendFile (name: string, path: string): void {
    const st = statSync(path)
    this.#entries.push([name, new DiskFile(path, basename(path), st.size, st.mtimeMs)])
  }

  getAll (name: string) { return this.#entries.filter(([k]) => k === name).map(([, v]) => v) }
  entries () { return this.#entries[Symbol.iterator]() }
  [Symbol.iterator] () { return this.entries() }
}
