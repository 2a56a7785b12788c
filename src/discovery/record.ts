// The TXT record of `_rrcloud._tcp`: what a node tells the LAN about itself.
// RFC 6763 §6: each string is `key=value`, at most 255 bytes; we keep the whole record under
// TXT_MAX_BYTES so that a full answer (PTR + SRV + TXT + A) stays well inside one 1500-byte packet.
import debug from 'debug'

const log = debug('rrcloud:discovery')

/** Bumped only for incompatible changes; new keys keep the version. */
export const RECORD_VERSION = 1
/** Wire size budget of the whole TXT record (each string plus its length byte). */
export const TXT_MAX_BYTES = 1000
const STRING_MAX = 255
const NAME_MAX = 63

export interface PrinterInfo {
  name: string
  /** serial port path, e.g. /dev/ttyUSB0 */
  port: string
  /** idle, printing, paused, finished (the bed holds a print), error, disconnected */
  state: string
  /** farm groups the printer belongs to */
  groups?: string[]
}

export interface NodeRecord {
  /** software version, e.g. 0.1.0 */
  version: string
  /** stable node id (at most 64 bytes) */
  id: string
  /** display name (truncated to 63 bytes) */
  name?: string
  services: string[]
  /** 1-minute load average divided by the number of cores */
  load: number
  cores: number
  slots: number
  free: number
  queue: number
  printers: PrinterInfo[]
  tokenRequired: boolean
  /** set by decodeRecord when the sender had to drop entries: fetch /api/v1 for the full lists */
  truncated?: Array<'services' | 'printers'>
}

const size = (s: string): number => Buffer.byteLength(s) + 1

/** Cuts a string to at most `max` UTF-8 bytes without splitting a character. */
export function truncateBytes (s: string, max: number): string {
  if (Buffer.byteLength(s) <= max) return s
  let out = ''
  for (const ch of s) {
    if (Buffer.byteLength(out + ch) > max) break
    out += ch
  }
  return out
}

// `|` separates a printer's fields (name|state|port|groups) and `,` list items; `%` escapes them
const esc = (s: string): string => s.replace(/[%|,]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
const unesc = (s: string): string => s.replace(/%([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)))
// printers sit on /dev nearly always: leaving it out keeps the record compact
const shortPort = (p: string): string => p.startsWith('/dev/') ? p.slice(5) : p
const longPort = (p: string): string => p.startsWith('/') || p === '' ? p : `/dev/${p}`

function num (n: number, digits = 0): string {
  const f = 10 ** digits
  return String(Math.round(Math.max(0, Number.isFinite(n) ? n : 0) * f) / f)
}

/**
 * Encodes a record as TXT strings. Fixed keys always fit; the services list is cut to one
 * 255-byte string and printers are added one per key (`p0`, `p1`, ...) while the total stays under
 * TXT_MAX_BYTES. Whatever is dropped is named in `trunc` (services are dropped from the end of the
 * list, printers from the end of theirs).
 */
export function encodeRecord (r: NodeRecord): Buffer[] {
  if (!r.id || Buffer.byteLength(r.id) > 64 || /[=,|\s]/.test(r.id)) throw new Error(`invalid node id ${JSON.stringify(r.id)}`)
  const out = [
    `txtvers=${RECORD_VERSION}`,
    `v=${truncateBytes(r.version, 32)}`,
    `id=${r.id}`,
    `load=${num(r.load, 2)}`,
    `cores=${num(r.cores)}`,
    `slots=${num(r.slots)}`,
    `free=${num(r.free)}`,
    `queue=${num(r.queue)}`,
    `tok=${r.tokenRequired ? 1 : 0}`,
  ]
  if (r.name) out.push(`name=${truncateBytes(r.name, NAME_MAX)}`)
  const reserve = size('trunc=services,printers')
  let used = out.reduce((n, s) => n + size(s), 0)
  const truncated: string[] = []
  let svc = 'svc='
  const services = r.services.filter((s) => s && !/[,=]/.test(s))
  for (const [i, s] of services.entries()) {
    const next = i === 0 ? svc + s : `${svc},${s}`
    if (Buffer.byteLength(next) > STRING_MAX || used + size(next) + reserve > TXT_MAX_BYTES) {
      truncated.push('services')
      break
    }
    svc = next
  }
  out.push(svc)
  used += size(svc)
  for (const [i, p] of r.printers.entries()) {
    const groups = p.groups?.length ? `|${p.groups.map((g) => esc(truncateBytes(g, NAME_MAX))).join(',')}` : ''
    const s = `p${i}=${esc(truncateBytes(p.name, NAME_MAX))}|${esc(truncateBytes(p.state, 16))}|${esc(shortPort(p.port))}${groups}`
    if (Buffer.byteLength(s) > STRING_MAX || used + size(s) + reserve > TXT_MAX_BYTES) {
      truncated.push('printers')
      break
    }
    out.push(s)
    used += size(s)
  }
  if (truncated.length) {
    out.push(`trunc=${truncated.join(',')}`)
    log('TXT record too large: dropped some %s', truncated.join(' and '))
  }
  return out.map((s) => Buffer.from(s))
}

/** Wire size of TXT strings (each plus its length byte). */
export function txtSize (strings: Array<Buffer | string>): number {
  return strings.reduce((n, s) => n + Buffer.byteLength(s) + 1, 0)
}

/** Splits TXT strings into keys (lower-cased; the first occurrence of a key wins, RFC 6763 §6.4). */
export function txtPairs (strings: Array<Buffer | string>): Map<string, string> {
  const m = new Map<string, string>()
  for (const b of strings) {
    const s = b.toString()
    const eq = s.indexOf('=')
    const key = (eq < 0 ? s : s.slice(0, eq)).toLowerCase()
    if (key && !m.has(key)) m.set(key, eq < 0 ? '' : s.slice(eq + 1))
  }
  return m
}

/** Decodes TXT strings; undefined when they are not a record of a version this code understands. */
export function decodeRecord (strings: Array<Buffer | string>): NodeRecord | undefined {
  const kv = txtPairs(strings)
  if (kv.get('txtvers') !== String(RECORD_VERSION)) return undefined
  const id = kv.get('id')
  const version = kv.get('v')
  if (!id || version === undefined) return undefined
  const n = (k: string): number | undefined => {
    const v = kv.get(k)
    if (v === undefined || v === '' || !/^\d+(\.\d+)?$/.test(v)) return undefined
    return Number(v)
  }
  const load = n('load')
  const cores = n('cores')
  const slots = n('slots')
  const free = n('free')
  const queue = n('queue')
  if (load === undefined || cores === undefined || slots === undefined || free === undefined || queue === undefined) return undefined
  const printers: PrinterInfo[] = []
  for (let i = 0; kv.has(`p${i}`); i++) {
    const [name, state = '', port = '', groups = ''] = (kv.get(`p${i}`) ?? '').split('|')
    if (!name) continue
    const p: PrinterInfo = { name: unesc(name), state: unesc(state), port: longPort(unesc(port)) }
    const g = groups.split(',').filter(Boolean).map(unesc)
    if (g.length) p.groups = g
    printers.push(p)
  }
  const record: NodeRecord = {
    version,
    id,
    services: (kv.get('svc') ?? '').split(',').filter(Boolean),
    load,
    cores,
    slots,
    free,
    queue,
    printers,
    tokenRequired: kv.get('tok') === '1',
  }
  const name = kv.get('name')
  if (name) record.name = name
  const trunc = (kv.get('trunc') ?? '').split(',').filter((t): t is 'services' | 'printers' => t === 'services' || t === 'printers')
  if (trunc.length) record.truncated = trunc
  return record
}
