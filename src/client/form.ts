import { statSync } from 'node:fs'
import { basename } from 'node:path'

/** A file of a form, named by its path: postForm (./http.ts) reads it from disk as the body is sent. */
export interface FormFile { path: string; name: string; size: number; type: string }

export type FormEntry = [name: string, value: string | FormFile]

/** A multipart form whose files stay on disk until they are sent, their sizes known up front. */
export class StreamingForm {
  readonly #entries: FormEntry[] = []

  append (name: string, value: string): void {
    this.#entries.push([name, value])
  }

  /**
   * Adds a file by path, sent under its base name or `filename` (a relative path in the task's
   * folder); its size is fixed now, so the request can say its length up front.
   */
  appendFile (name: string, path: string, filename = basename(path), size = statSync(path).size): void {
    this.#entries.push([name, { path, name: filename, size, type: 'application/octet-stream' }])
  }

  entries (): readonly FormEntry[] { return this.#entries }
}
