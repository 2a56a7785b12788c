// The calls a farm queue makes to the node of a printer: claim it, send the job as a print task,
// ask what became of a claim or a task. Files are streamed from disk (openAsBlob), never held whole.
import { openAsBlob } from 'node:fs'
import type { ClaimInfo } from './printers.js'

/** The node answered, and refused (a claim on a printer that is not ready: 409). */
export class Refused extends Error {
  constructor (message: string, readonly status: number) { super(message) }
}

export interface RemoteFarm {
  /** a claim on the printer, or Refused (409: not ready); other errors: the node could not be asked */
  claim (url: string, printer: string, info: ClaimInfo): Promise<string>
  release (url: string, printer: string, claim: string): Promise<void>
  /** what became of a claim (undefined: unknown there, released or expired) */
  lookup (url: string, printer: string, claim: string): Promise<{ pending: boolean; task?: string } | undefined>
  /** sends the job as a print task that names the claim; resolves with the task's id */
  submit (url: string, printer: string, claim: string, file: string, name: string): Promise<string>
  /** a task's status (undefined: no such task there) */
  task (url: string, id: string): Promise<{ status: string; error?: string } | undefined>
}

const enc = encodeURIComponent

export function createRemoteFarm (config: { token?: string, timeoutMs?: number, uploadMs?: number } = {}): RemoteFarm {
  const headers: Record<string, string> = { accept: 'application/json', ...(config.token ? { authorization: `Bearer ${config.token}` } : {}) }
  const timeoutMs = config.timeoutMs ?? 5000
  async function call (url: string, init: RequestInit = {}, ms = timeoutMs): Promise<{ status: number, body: any }> {
    const r = await fetch(url, { ...init, headers: { ...headers, ...init.headers as Record<string, string> }, signal: AbortSignal.timeout(ms) })
    const text = await r.text()
    let body: any = text
    try { body = JSON.parse(text) } catch {}
    return { status: r.status, body }
  }
  const fail = (what: string, r: { status: number, body: any }): never => {
    const msg = `${what}: ${r.status} ${typeof r.body === 'object' ? r.body?.error ?? '' : String(r.body).slice(0, 200)}`
    throw r.status >= 400 && r.status < 500 ? new Refused(msg, r.status) : new Error(msg)
  }
  const json = { 'content-type': 'application/json' }
  return {
    async claim (url, printer, info) {
      const r = await call(`${url}/api/v1/printers/${enc(printer)}/claim`, { method: 'POST', headers: json, body: JSON.stringify(info) })
      if (r.status !== 200) fail(`claim ${printer}`, r)
      return String(r.body.claim)
    },
    async release (url, printer, claim) {
      await call(`${url}/api/v1/printers/${enc(printer)}/claims/${enc(claim)}`, { method: 'DELETE' })
    },
    async lookup (url, printer, claim) {
      const r = await call(`${url}/api/v1/printers/${enc(printer)}/claims/${enc(claim)}`)
      if (r.status === 404) return undefined
      if (r.status !== 200) fail(`claim ${claim}`, r)
      return { pending: Boolean(r.body.pending), ...(r.body.task ? { task: String(r.body.task) } : {}) }
    },
    async submit (url, printer, claim, file, name) {
      const form = new FormData()
      form.append('service', 'printrun')
      form.append('printer', printer)
      form.append('claim', claim)
      form.append('fileIn0', await openAsBlob(file), name)
      const r = await call(`${url}/api/v1/tasks`, { method: 'POST', body: form }, config.uploadMs ?? 600_000)
      if (r.status !== 201 && r.status !== 200) fail(`print on ${printer}`, r)
      return String(r.body.id)
    },
    async task (url, id) {
      const r = await call(`${url}/api/v1/tasks/${enc(id)}`)
      if (r.status === 404) return undefined
      if (r.status !== 200) fail(`task ${id}`, r)
      return { status: String(r.body.status), ...(r.body.error ? { error: String(r.body.error) } : {}) }
    },
  }
}
