// The dashboard: the page browsers get at `/` (without a query) and at `/ui/`, and its scripts and
// styles, built by scripts/build-web.mjs into dist/web. See docs/dashboard.md.
import type { Context, Middleware } from 'koa'
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { brotliCompressSync, constants, gzip, gzipSync } from 'node:zlib'
import { HttpError } from './errors.js'
import { renderPage, type PageData } from './dashboard-page.js'

/** dist/web of this package, from src/node (tsx) and dist/node alike */
export const WEB_DIR = fileURLToPath(new URL('../../dist/web/', import.meta.url))

interface Asset { body: Buffer, gz?: Buffer, br?: Buffer, type: string, etag: string }

const TYPES: Record<string, string> = { js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8', svg: 'image/svg+xml', png: 'image/png', ico: 'image/x-icon' }

// no script or style from elsewhere, and no framing (the page has an emergency stop);
// connections to the other nodes of the LAN are the page's purpose
const CSP = "default-src 'self'; connect-src 'self' http: https:; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

function loadAssets (dir: string): { assets: Map<string, Asset>, js: string, css: string } | undefined {
  const manifestFile = join(dir, 'manifest.json')
  if (!existsSync(manifestFile)) return undefined
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as { js: string, css: string }
  const assets = new Map<string, Asset>()
  for (const name of readdirSync(dir)) {
    const ext = name.split('.').pop() ?? ''
    if (!TYPES[ext]) continue
    const body = readFileSync(join(dir, name))
    const variant = (suffix: string) => existsSync(join(dir, name + suffix)) ? readFileSync(join(dir, name + suffix)) : undefined
    assets.set(name, { body, gz: variant('.gz'), br: variant('.br'), type: TYPES[ext], etag: createHash('sha256').update(body).digest('base64url').slice(0, 22) })
  }
  return { assets, js: manifest.js, css: manifest.css }
}

/** br, then gzip, when the client takes it */
function encodingOf (ctx: Context): 'br' | 'gzip' | undefined {
  const e = ctx.acceptsEncodings('br', 'gzip', 'identity')
  return e === 'br' || e === 'gzip' ? e : undefined
}

function send (ctx: Context, a: { body: Buffer, gz?: Buffer, br?: Buffer, type: string, etag: string }, cache: string) {
  const enc = encodingOf(ctx)
  const body = enc === 'br' ? a.br : enc === 'gzip' ? a.gz : undefined
  ctx.vary('Accept-Encoding')
  ctx.set('Cache-Control', cache)
  ctx.set('X-Content-Type-Options', 'nosniff')
  ctx.type = a.type
  ctx.etag = `"${a.etag}${body ? `-${enc}` : ''}"`
  ctx.status = 200
  if (ctx.fresh) { ctx.status = 304; return }
  if (body) ctx.set('Content-Encoding', enc!)
  ctx.body = body ?? a.body
}

const gzipAsync = promisify(gzip)

/**
 * JSON replies of the API to a browser's page (it says Sec-Fetch-Mode) gzipped when it takes it:
 * the page reads a node's whole task list. Other clients get them as before.
 */
async function compressForPages (ctx: Context): Promise<void> {
  if (!ctx.get('sec-fetch-mode') || ctx.response.get('Content-Encoding') || !ctx.response.is('application/json')) return
  const body: unknown = ctx.body
  if (typeof body !== 'string' || body.length < 1024 || encodingOf(ctx) === undefined) return
  ctx.vary('Accept-Encoding')
  const zipped = await gzipAsync(body, { level: 6 })
  ctx.set('Content-Encoding', 'gzip')
  ctx.body = zipped
}

export interface DashboardDeps {
  /** what the page shows before its script runs (and without one) */
  data: () => PageData
  /** where the built page is (default dist/web) */
  dir?: string
}

/**
 * Serves the dashboard: `GET /` to a browser (the format the seed API would answer is html) without
 * a query, `GET /ui/` always, and `/ui/ASSET`. Scripts and old browsers keep the seed's answers at
 * `/?service=...`. Without a built page (no `npm run build`) `/` stays the seed's page.
 */
export function dashboard (deps: DashboardDeps): Middleware {
  const built = loadAssets(deps.dir ?? WEB_DIR)
  const page = (ctx: Context) => {
    if (!built) throw new HttpError(503, 'the dashboard is not built here: run npm run build')
    const html = Buffer.from(renderPage(deps.data(), { js: `/ui/${built.js}`, css: `/ui/${built.css}` }))
    const etag = createHash('sha256').update(html).digest('base64url').slice(0, 22)
    const enc = encodingOf(ctx)
    ctx.set('Content-Security-Policy', CSP)
    ctx.set('Referrer-Policy', 'no-referrer')
    send(ctx, {
      body: html,
      type: 'text/html; charset=utf-8',
      etag,
      ...(enc === 'br' ? { br: brotliCompressSync(html, { params: { [constants.BROTLI_PARAM_QUALITY]: 5 } }) } : {}),
      ...(enc === 'gzip' ? { gz: gzipSync(html) } : {}),
    }, 'no-cache')
  }
  return async (ctx, next) => {
    const read = ctx.method === 'GET' || ctx.method === 'HEAD'
    if (ctx.path === '/' && read && ctx.querystring === '' && ctx.state.format === 'html' && built) return page(ctx)
    if (ctx.path === '/ui') {
      ctx.status = 308
      ctx.redirect('/ui/' + (ctx.querystring ? `?${ctx.querystring}` : ''))
      return
    }
    if (!ctx.path.startsWith('/ui/')) {
      await next()
      return compressForPages(ctx)
    }
    if (!read) {
      ctx.set('Allow', 'GET, HEAD, OPTIONS')
      if (ctx.method === 'OPTIONS') { ctx.status = 204; return }
      throw new HttpError(405, `${ctx.method} ${ctx.path} is not supported; it takes GET`)
    }
    if (ctx.path === '/ui/') return page(ctx)
    const a = built?.assets.get(ctx.path.slice(4))
    if (!a) throw new HttpError(404, `nothing at ${ctx.path}`)
    // names carry their content's hash: a new build has new names
    send(ctx, a, 'public, max-age=31536000, immutable')
  }
}
