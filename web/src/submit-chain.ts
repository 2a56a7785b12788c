// A chain from the page: a model rendered, then sliced with the slicer config given, then (when a
// group or printer is chosen) queued for printing in some copies. This node drives it as one
// pipeline; the files go as a multipart form (POST /api/v1/pipelines: stageN, stageN.in,
// stageN.config, stageN.file, group or printer, copies), which the node names by digest itself: a
// page on plain http has no crypto.subtle to do it.
import { app } from './app.js'
import { h } from './dom.js'
import type { PipelineView } from './model.js'
import { baseName, byRole } from './submit-files.js'
import type { FarmTarget } from './submit-farm.js'

const PREFIX = 'chain:'
const RENDERERS = ['openscad', 'openjscad']
const SLICER = 'slic3r'

/** the stages of a chain chosen in the Service list (`chain:openscad>slic3r`), or undefined for one task */
export const chainOf = (value: string): string[] | undefined => value.startsWith(PREFIX) ? value.slice(PREFIX.length).split('>') : undefined

/** whether the chain ends in the farm queue only (slic3r, then print): it needs a group or printer */
export const needsPrinter = (stages: string[]): boolean => stages.length === 1

/** the chains the LAN can run, as [value, label]: each renderer then the slicer; the slicer alone when it can print */
export function chainChoices (): Array<[string, string]> {
  const offered = new Set([...app.sources.values()].flatMap((s) => s.info.services))
  if (!offered.has(SLICER)) return []
  const printers = [...app.sources.values()].some((s) => s.info.printers.length > 0)
  const chains = [
    ...RENDERERS.filter((r) => offered.has(r)).map((r) => [r, SLICER]),
    ...(printers ? [[SLICER]] : []),
  ]
  return chains.map((c) => [PREFIX + c.join('>'), c.length === 1 ? `${c[0]} → print` : `${c.join(' → ')}${printers ? ' (→ print)' : ''}`])
}

/** the chains as the Service list's last group */
export const chainGroup = (choices: Array<[string, string]>): HTMLOptGroupElement | '' => choices.length
  ? h('optgroup', { label: 'A chain, driven by this node' }, ...choices.map(([value, label]) => h('option', { value }, label)))
  : ''

/** the service whose models are the chain's input, and the one a config file is for */
export const chainRoles = (stages: string[]): { model: string, config: string } => ({ model: stages[0], config: SLICER })

/** why the chain cannot be sent as it is, if it cannot */
export function chainProblem (stages: string[], farm: FarmTarget | undefined): string | undefined {
  const { inputs } = byRole()
  if (!inputs.length) return `Choose or drop the model for ${stages[0]} first.`
  if (needsPrinter(stages) && !farm) return 'Choose where to print (Print on).'
  if (farm && !(Number.isInteger(farm.copies) && farm.copies >= 1 && farm.copies <= 1000)) return 'Copies: a whole number from 1 to 1000.'
  return undefined
}

/** the chain as the node's form: the model and its files to the first stage, the configs to the slicer's */
export function chainForm (stages: string[], farm: FarmTarget | undefined): FormData {
  const fd = new FormData()
  const { configs, inputs, files } = byRole()
  stages.forEach((s, i) => fd.append(`stage${i + 1}`, s))
  if (farm?.group !== undefined) fd.append('group', farm.group)
  else if (farm?.printer !== undefined) fd.append('printer', farm.printer)
  if (farm) fd.append('copies', String(farm.copies))
  const slicer = stages.indexOf(SLICER) + 1
  for (const e of configs) fd.append(`stage${slicer}.config`, e.file, baseName(e.path))
  for (const e of inputs) fd.append('stage1.in', e.file, baseName(e.path))
  for (const e of files) fd.append('stage1.file', e.file, e.path)
  return fd
}

/** what the page says once the node took the chain */
export function chainSent (p: PipelineView): string {
  const print = p.queue ? ` then ${p.queue.copies} cop${p.queue.copies === 1 ? 'y' : 'ies'} on ${p.queue.group !== undefined ? `group ${p.queue.group}` : `printer ${p.queue.printer}`}` : ''
  return `Pipeline ${p.id} (${p.stages.map((s) => s.service).join(' → ')}${print}) sent: its stages are in the list of pipelines.`
}
