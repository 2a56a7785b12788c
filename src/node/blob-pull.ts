import { createHash, randomBytes } from 'node:crypto'
import { createWriteStream, mkdirSync, rmSync } from 'node:fs'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Transform } from 'node:stream'
import type { BlockList } from 'node:net'
import type { BlobStore } from './blobs.js'
import { HttpError } from './errors.js'
import { checkedAddresses, pinned, RefusedUrl } from './notifier.js'
import { SHA256 } from './tree.js'
import { isDiskFull, diskFull } from './uploads.js'
import { VERSION } from '../version.js'

export interface BlobPullConfig {
  /** the node's --allow: a node to pull from must be inside it */
  allow: BlockList
  /** where a blob is written while it comes */
  tmpDir: string
  /** largest blob taken, bytes */
  maxBytes: number
  /** ms without data before the transfer is given up (default 60 s) */
  idleMs?: number
}

/** Brings blobs from another node's content store into this one's, by digest. */
export interface BlobPuller {
  /**
   * Holds `sha256` once it resolves: already here, or fetched from `GET FROM/api/v1/blobs/SHA`
   * (`from`: a node's base URL, `http://HOST:PORT`), checked as it streams in. Throws HttpError:
   * 400 for a `from` that is not a node's base URL or is refused (outside --allow, link-local),
   * 502 when that node fails, does not hold it, or sends other bytes.
   */
  pull (sha256: string, from: string, token?: string): Promise<{ sha256: string, size: number, pulled: boolean }>
}

/** `http://HOST[:PORT]` with nothing after it but `/`. */
function baseUrl (from: string): URL {
  let u: URL
  try { u = new URL(from) } catch { throw new HttpError(400, `from: ${JSON.stringify(from)} is not a URL; give a node's base URL, http://HOST:PORT`) }
  if (!/^https?:$/.test(u.protocol) || u.username || u.password || (u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) {
    throw new HttpError(400, `from: ${JSON.stringify(from)} is not a node's base URL; give http://HOST:PORT`)
  }
  return u
}

export function createBlobPuller (config: BlobPullConfig, deps: { blobs: BlobStore, log: (line: string) => void, lookup?: Parameters<typeof checkedAddresses>[2] }): BlobPuller {
  const { blobs, log } = deps
  const inFlight = new Map<string, Promise<{ sha256: string, size: number, pulled: boolean }>>()

  async function get (sha: string, u: URL, token: string | undefined): Promise<{ sha256: string, size: number, pulled: boolean }> {
    let addrs
    try {
      addrs = await checkedAddresses(u.href, config.allow, deps.lookup)
    } catch (e) {
      if (e instanceof RefusedUrl) throw new HttpError(400, `from refused: ${e.message}`)
      throw new HttpError(502, `from: ${(e as Error).message}`)
    }
    const source = `${u.origin}/api/v1/blobs/${sha}`
    const request = u.protocol === 'https:' ? httpsRequest : httpRequest
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(source, {
        headers: { 'user-agent': `rrcloud-node/${VERSION}`, ...(token ? { authorization: `Bearer ${token}` } : {}) },
        // only the addresses checked above: no second resolution, no redirect followed
        lookup: pinned(addrs),
        timeout: config.idleMs ?? 60_000,
      })
      req.once('timeout', () => req.destroy(new Error(`no answer from ${u.host}`)))
      req.once('response', resolve)
      req.once('error', reject)
      req.end()
    }).catch((e: Error) => { throw new HttpError(502, `cannot reach ${u.host}: ${e.message}`) })
    if (res.statusCode !== 200) {
      res.resume()
      throw new HttpError(502, `${u.host} answered ${res.statusCode} for blob ${sha}${res.statusCode === 404 ? ' (it does not hold it)' : ''}`)
    }
    const length = Number(res.headers['content-length'])
    if (length > config.maxBytes) {
      res.destroy()
      throw new HttpError(413, `blob ${sha} is ${length} bytes, over this node's limit of ${config.maxBytes} (--cache-size, --max-upload)`)
    }
    mkdirSync(config.tmpDir, { recursive: true })
    const tmp = join(config.tmpDir, randomBytes(12).toString('hex'))
    const hash = createHash('sha256')
    let size = 0
    const count = new Transform({
      transform (chunk: Buffer, _enc, cb) {
        size += chunk.length
        if (size > config.maxBytes) return cb(new HttpError(413, `blob ${sha} is over this node's limit of ${config.maxBytes} bytes`))
        hash.update(chunk)
        cb(null, chunk)
      },
    })
    res.setTimeout(config.idleMs ?? 60_000, () => res.destroy(new Error(`no data from ${u.host} for ${(config.idleMs ?? 60_000) / 1000} s`)))
    try {
      await pipeline(res, count, createWriteStream(tmp, { highWaterMark: 1 << 20 }))
      if (!res.complete) throw new Error(`${u.host} closed the connection`)
      const got = hash.digest('hex')
      if (got !== sha) throw new HttpError(502, `${u.host} sent bytes whose SHA-256 is ${got}, not ${sha}: nothing was kept`)
      const pulled = blobs.adopt(tmp, sha, size)
      log(`store: blob ${sha.slice(0, 12)} (${size} bytes) pulled from ${u.host}`)
      return { sha256: sha, size, pulled }
    } catch (e) {
      rmSync(tmp, { force: true })
      if (e instanceof HttpError) throw e
      if (isDiskFull(e)) throw diskFull()
      throw new HttpError(502, `pulling blob ${sha} from ${u.host} failed: ${(e as Error).message}`)
    }
  }

  return {
    async pull (sha, from, token) {
      if (!SHA256.test(sha)) throw new HttpError(400, `${sha} is not a SHA-256: name a blob by 64 lower-case hex digits`)
      if (!blobs.enabled) throw new HttpError(404, 'this node keeps no content store (--cache-size 0)')
      const u = baseUrl(from)
      const held = blobs.size(sha)
      if (held !== undefined) return { sha256: sha, size: held, pulled: false }
      let p = inFlight.get(sha)
      if (!p) {
        p = get(sha, u, token).finally(() => inFlight.delete(sha))
        inFlight.set(sha, p)
      }
      return p
    },
  }
}
