// Submit to the farm: a G-code file printed on the first free printer of a group, or on one printer
// by name, in some copies, as a job of a farm queue (POST /api/v1/queue, multipart `file`, `group`
// or `printer`, `copies`), sent to a node that has such a printer.
import { app } from './app.js'
import { byId, h, show } from './dom.js'
import { lanGroups, lanPrinters } from './farm.js'
import type { Source } from './model.js'

export const GCODE = ['gcode', 'gco', 'g']

export interface FarmTarget { src: Source, group?: string, printer?: string, copies: number }

/** the URL that shows a job of a queue on the dashboard */
export const jobUrl = (src: Source, id: string): string =>
  `/ui/?job=${encodeURIComponent(id)}${src.self ? '' : `&node=${encodeURIComponent(src.id)}`}`

/** "Print on": no queue (a task of the service, or `none` for a chain), each group of the LAN's printers, each printer by name */
export function fillFarmChoices (wanted: boolean, none = 'no queue: a task of the service'): void {
  const select = byId<HTMLSelectElement>('submit-farm')
  const groups = lanGroups()
  const printers = lanPrinters()
  const key = [...groups].map(([g, ps]) => `${g}:${ps.length}`).join() + '|' + printers.map((x) => `${x.src.id}:${x.p.name}:${x.src.name}`).join() + '|' + none
  if (select.dataset.key !== key) {
    const was = select.value
    select.dataset.key = key
    select.replaceChildren(
      h('option', { value: '' }, none),
      ...(groups.size ? [h('optgroup', { label: 'A group: its first free printer' }, ...[...groups].map(([g, ps]) => h('option', { value: `group:${g}` }, `group ${g} (${ps.length} printer${ps.length === 1 ? '' : 's'})`)))] : []),
      h('optgroup', { label: 'One printer' }, ...printers.map((x) => h('option', { value: `printer:${x.src.id}:${x.p.name}` }, `printer ${x.p.name} on ${x.src.name}`))))
    select.value = [...select.options].some((o) => o.value === was) ? was : ''
  }
  show(byId('farm-fields'), wanted && printers.length > 0)
  show(byId('copies-field'), Boolean(farmChoice()))
}

const farmChoice = (): string => byId('farm-fields').hidden ? '' : byId<HTMLSelectElement>('submit-farm').value

/** where the job goes: the printer's node; for a group the node chosen, this one or the first that has a printer of it */
export function farmTarget (chosen: Source): FarmTarget | undefined {
  const v = farmChoice()
  if (!v) return undefined
  const copies = Number(byId<HTMLInputElement>('submit-copies').value || '1')
  const [kind, ...rest] = v.split(':')
  if (kind === 'printer') {
    const src = app.sources.get(rest[0])
    return src ? { src, printer: rest.slice(1).join(':'), copies } : undefined
  }
  const group = rest.join(':')
  const nodes = (lanGroups().get(group) ?? []).map((x) => x.src)
  const src = nodes.find((s) => s === chosen) ?? nodes.find((s) => s.self) ?? nodes[0] ?? chosen
  return { src, group, copies }
}
