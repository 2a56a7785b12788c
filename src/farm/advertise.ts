// What a node tells the LAN about its farm before the farm itself is loaded: the printers'
// states as their connections show them, and the `_octoprint._tcp` services slicers browse for.
import type { Printer } from '../executors/printer/printer.js'
import type { ServiceInstance } from '../discovery/index.js'
import type { FarmPrinterConfig, FarmState } from './printers.js'

/** The OctoPrint version and API version the node's OctoPrint-compatible API answers as. */
export const OCTOPRINT_VERSION = '1.5.0'
export const OCTOPRINT_API = '0.1'

/** The state a printer shows before the farm knows it (the node starting). */
export function connectionState (s: Printer['state']): FarmState {
  return s === 'idle' ? 'idle' : s === 'halted' ? 'error' : s === 'paused' ? 'paused' : s === 'printing' || s === 'cancelling' ? 'printing' : 'disconnected'
}

/**
 * The `_octoprint._tcp` services of a node's printers and groups, for slicers' "Browse": one per
 * printer and one per group, named after it and the node, with the API's path in TXT.
 */
export function octoPrintServices (nodeName: string, printers: FarmPrinterConfig[], version = OCTOPRINT_VERSION, api = OCTOPRINT_API): ServiceInstance[] {
  const node = nodeName.replace(/\./g, '-')
  const txt = (path: string, model: string) => [`txtvers=1`, `path=${path}`, `version=${version}`, `api=${api}`, `model=${model}`, 'vendor=rrcloud']
  const groups = [...new Set(printers.flatMap((p) => p.groups ?? []))]
  return [
    ...printers.map((p) => ({ type: '_octoprint._tcp.local', name: `${p.name} on ${node}`, txt: txt(`/octoprint/printer/${p.name}`, p.groups?.[0] ?? p.name) })),
    ...groups.map((g) => ({ type: '_octoprint._tcp.local', name: `${g} group on ${node}`, txt: txt(`/octoprint/group/${g}`, g) })),
  ]
}
