import { fetchText, RequestError } from './http.js'

/**
 * The part of got's API that client modules use for small JSON look-ups (`got.extend(...)`, then
 * `await http(url, { timeout, headers })` for status and body), on node:http. The client bundle
 * (scripts/bundle-client.mjs) resolves `got` to this module: got itself takes longer to load than a
 * whole synchronous run of a short task. Anything else of got's API throws, so that a new use is
 * seen at once (the tests run the bundle).
 */
interface Options {
  method?: string
  headers?: Record<string, string>
  timeout?: { request?: number; connect?: number; lookup?: number }
  throwHttpErrors?: boolean
  retry?: { limit?: number }
  prefixUrl?: string
  body?: string
}

interface Response { statusCode: number; headers: Record<string, string | string[] | undefined>; body: string }

export class HTTPError extends Error {
  readonly code = 'ERR_NON_2XX_3XX_RESPONSE'
  constructor (readonly response: Response) {
    super(`Response code ${response.statusCode}`)
  }
}

export { RequestError }

const KNOWN = new Set(['method', 'headers', 'timeout', 'throwHttpErrors', 'retry', 'prefixUrl', 'body'])

function merge (a: Options, b: Options = {}): Options {
  for (const k of Object.keys(b)) if (!KNOWN.has(k)) throw new Error(`got option ${k} is not supported in the client bundle (src/client/got-lite.ts)`)
  return { ...a, ...b, headers: { ...a.headers, ...b.headers }, timeout: { ...a.timeout, ...b.timeout }, retry: { ...a.retry, ...b.retry } }
}

type Got = ((url: string, o?: Options) => Promise<Response>) & { extend (o: Options): Got; stream (): never }

function make (defaults: Options): Got {
  const call = async (url: string, o?: Options): Promise<Response> => {
    const m = merge(defaults, o)
    const full = m.prefixUrl ? `${m.prefixUrl.replace(/\/$/, '')}/${url}` : url
    const method = (m.method ?? 'GET').toUpperCase()
    // got retries idempotent requests twice on network errors unless told not to
    let tries = method === 'GET' ? 1 + (m.retry?.limit ?? 2) : 1
    for (;;) {
      try {
        const r = await fetchText(full, { method, headers: m.headers, body: m.body, timeoutMs: m.timeout?.request, connectTimeoutMs: m.timeout?.connect })
        const res: Response = { statusCode: r.statusCode, headers: r.headers, body: r.body }
        if (m.throwHttpErrors !== false && r.statusCode >= 400) throw new HTTPError(res)
        return res
      } catch (err) {
        if (!(err instanceof RequestError) || --tries <= 0) throw err
      }
    }
  }
  return Object.assign(call, {
    extend: (o: Options) => make(merge(defaults, o)),
    stream (): never { throw new Error('got.stream is not in the client bundle (src/client/got-lite.ts)') },
  })
}

export default make({})
