// The LAN's printers as the farm sees them: each with its node, farm state and groups, from the
// node's events when they came, else from its record or meta.
import { app } from './app.js'
import type { PrinterView, Source } from './model.js'

export interface LanPrinter { src: Source, p: PrinterView, state: string, groups: string[] }

/** every printer of the LAN, this node's first, with its farm state */
export function lanPrinters (): LanPrinter[] {
  const out: LanPrinter[] = []
  for (const src of app.sources.values()) {
    const names = new Set([...src.info.printers.map((p) => p.name), ...src.printers.keys()])
    for (const name of names) {
      const rec = src.info.printers.find((x) => x.name === name)
      // until the node's events come, what its record says
      const p = src.printers.get(name) ?? { name, state: rec?.state ?? 'unknown' }
      out.push({ src, p, state: p.farmState ?? (src.printers.has(name) ? p.state : rec?.state ?? p.state), groups: p.groups ?? rec?.groups ?? [] })
    }
  }
  return out.sort((a, b) => Number(b.src.self) - Number(a.src.self) || a.src.name.localeCompare(b.src.name) || a.p.name.localeCompare(b.p.name))
}

/** every group of the LAN's printers, by name */
export function lanGroups (): Map<string, LanPrinter[]> {
  const groups = new Map<string, LanPrinter[]>()
  for (const x of lanPrinters()) for (const g of x.groups) groups.set(g, [...groups.get(g) ?? [], x])
  return new Map([...groups].sort(([a], [b]) => a.localeCompare(b)))
}
