// Who a node is on the LAN: its id (kept across restarts) and the record it advertises. Light on
// purpose: `rrcloud node` starts probing its mDNS names with these before the rest of the node loads.
import { readFileSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { VERSION } from '../version.js'
import type { NodeRecord, PrinterInfo } from '../discovery/index.js'

/** A node keeps its id across restarts, so that peers and clients can tell it apart from others. */
export function nodeIdOf (dataDir: string): string {
  const file = join(dataDir, 'node-id')
  try {
    const id = readFileSync(file, 'utf8').trim()
    if (/^[0-9a-f]{16}$/.test(id)) return id
  } catch {}
  const id = randomBytes(8).toString('hex')
  writeFileSync(file, id + '\n')
  return id
}

/** The record this node advertises over mDNS. */
export function nodeRecord (o: { nodeId: string, serverName: string, offered: string[], cores: number, slots: number, printers: () => PrinterInfo[], tokenRequired: boolean },
  st: { free: number, queue: number } = { free: o.slots, queue: 0 }): NodeRecord {
  return {
    version: VERSION, id: o.nodeId, name: o.serverName, services: o.offered,
    load: Math.round(loadavg()[0] / o.cores * 100) / 100, cores: o.cores, slots: o.slots, free: st.free, queue: st.queue,
    printers: o.printers(), tokenRequired: o.tokenRequired,
  }
}
