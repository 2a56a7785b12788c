// Requests to a node of the LAN, with its token when it needs one: asked for once on a 401, kept
// in localStorage per node, sent as Authorization: Bearer.
import { ask } from './dialog.js'

const KEY = 'rrcloud.tokens'

export interface Target { base: string, name: string }

const originOf = (base: string): string => base || location.origin

function tokens (): Record<string, string> {
  try { return JSON.parse(localStorage.getItem(KEY) ?? '{}') as Record<string, string> } catch { return {} }
}

export function tokenOf (t: Target): string | undefined {
  return tokens()[originOf(t.base)]
}

function setToken (t: Target, token: string | undefined): void {
  const all = tokens()
  if (token) all[originOf(t.base)] = token
  else delete all[originOf(t.base)]
  try { localStorage.setItem(KEY, JSON.stringify(all)) } catch {}
}

export const authHeaders = (t: Target): Record<string, string> => {
  const token = tokenOf(t)
  return token ? { authorization: `Bearer ${token}` } : {}
}

/** Asks for a node's token; undefined when the user does not give one. */
export async function askToken (t: Target, again = false): Promise<string | undefined> {
  const token = await ask(`${again ? 'That token was refused. ' : ''}The node ${t.name} needs a token to do this.`, { ok: 'Use this token', input: 'Token' })
  if (token) setToken(t, token)
  return token || undefined
}

export function forgetToken (t: Target): void { setToken(t, undefined) }

export class NodeError extends Error {
  constructor (readonly status: number, message: string) { super(message) }
}

/** A request to a node (with a JSON body when given); a 401 asks for the token once and tries again with it. */
export async function call<T = any> (t: Target, method: string, path: string, body?: Record<string, unknown>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const r = await fetch(t.base + path, {
      method,
      headers: { accept: 'application/json', ...(body ? { 'content-type': 'application/json' } : {}), ...authHeaders(t) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    })
    const answer = await r.json().catch(() => ({})) as { error?: string }
    if (r.status === 401) {
      if (attempt > 0) forgetToken(t)
      if (attempt < 1 && await askToken(t, tokenOf(t) !== undefined)) continue
    }
    if (!r.ok) throw new NodeError(r.status, answer.error ?? `${method} ${path}: ${r.status}`)
    return answer as T
  }
}

export async function getJson<T = any> (t: Target, path: string): Promise<{ status: number, body?: T }> {
  const r = await fetch(t.base + path, { headers: { accept: 'application/json' } })
  return { status: r.status, body: r.ok ? await r.json() as T : undefined }
}

/** a multipart POST with upload progress; resolves with the node's answer when it is 201 */
export function postForm<T> (src: Target, path: string, fd: FormData, progress: (x: number) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest()
    x.open('POST', `${src.base}${path}`)
    x.setRequestHeader('Accept', 'application/json')
    for (const [k, v] of Object.entries(authHeaders(src))) x.setRequestHeader(k, v)
    x.upload.onprogress = (e) => { if (e.lengthComputable) progress(e.loaded / e.total) }
    x.onload = () => {
      let body: any
      try { body = JSON.parse(x.responseText) } catch {}
      if (x.status === 201) resolve(body as T)
      else reject(new NodeError(x.status, body?.error ?? `the node answered ${x.status}`))
    }
    x.onerror = () => reject(new NodeError(0, `${src.name} did not answer`))
    x.send(fd)
  })
}
