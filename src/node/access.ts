import { BlockList, isIP } from 'node:net'
import { timingSafeEqual } from 'node:crypto'

/** Loopback, private, link-local and unique-local ranges: the LAN a node serves by default. */
export const DEFAULT_ALLOW = [
  '127.0.0.0/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16',
  '::1/128', 'fe80::/10', 'fc00::/7',
]

/** `::ffff:10.0.0.1` → `10.0.0.1`, so that IPv4 rules apply to v4-mapped peers. */
export const plainIp = (ip: string) => ip.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1')

export function parseCidrs (cidrs: string[]): BlockList {
  const list = new BlockList()
  for (const raw of cidrs) {
    const [addr, bits] = raw.trim().split('/')
    const family = isIP(addr)
    if (!family) throw new Error(`--allow: "${raw}" is not an address or CIDR range`)
    const max = family === 4 ? 32 : 128
    const prefix = bits === undefined ? max : Number(bits)
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) throw new Error(`--allow: bad prefix length in "${raw}"`)
    list.addSubnet(addr, prefix, family === 4 ? 'ipv4' : 'ipv6')
  }
  return list
}

export function isAllowed (list: BlockList, ip: string): boolean {
  const p = plainIp(ip)
  const family = isIP(p)
  return family !== 0 && list.check(p, family === 4 ? 'ipv4' : 'ipv6')
}

export function tokenMatches (expected: string, given: string | undefined): boolean {
  if (given === undefined) return false
  const a = Buffer.from(expected)
  const b = Buffer.from(given)
  return a.length === b.length && timingSafeEqual(a, b)
}
