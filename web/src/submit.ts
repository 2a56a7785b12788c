// Submit: files (submit-files.ts), a node and a service; sent as the node's multipart form with
// upload progress, then followed live; a G-code file may go to a farm queue instead
// (submit-farm.ts), and a model through a chain of stages to the farm (submit-chain.ts). The page's
// address becomes the task's (or the job's, or the pipeline's), so a reload shows it and sends nothing.
import { app, changed, onRender } from './app.js'
import { byId, h, setText, show } from './dom.js'
import type { JobView, PipelineView, Source, TaskView } from './model.js'
import { askToken, NodeError, postForm, tokenOf } from './net.js'
import { focusPipeline, pipelineUrl } from './pipelines.js'
import { chainChoices, chainForm, chainGroup, chainOf, chainProblem, chainRoles, chainSent, needsPrinter } from './submit-chain.js'
import { farmTarget, fillFarmChoices, GCODE, jobUrl, type FarmTarget } from './submit-farm.js'
import { baseName, byRole, clearFiles, configPrefix, entries, extOf, guessing, initFiles, rechoose, type Entry } from './submit-files.js'
import { focusTask, taskUrl } from './tasks.js'

const target = (): Source => app.sources.get(byId<HTMLSelectElement>('submit-node').value) ?? app.self
const service = (): string => byId<HTMLSelectElement>('submit-service').value
/** the stages of the chain chosen, or undefined for one task */
const chain = (): string[] | undefined => chainOf(service())

let sending = false

function form (): FormData {
  const fd = new FormData()
  const s = service()
  fd.append('service', s)
  const printer = byId<HTMLSelectElement>('submit-printer')
  if (s === 'printrun' && printer.value) fd.append('printer', printer.value)
  const { configs, inputs, files } = byRole()
  // paths only for a project: a node without a content store takes plain inputs
  const paths = files.length > 0
  let i = 0
  for (const e of [...configs, ...inputs]) {
    fd.append(`fileIn${i}`, e.file, baseName(e.path))
    if (e.role === 'config') fd.append(`prearg${i}`, configPrefix!)
    if (paths) fd.append(`path${i}`, e.path)
    i++
  }
  for (const e of files) fd.append('file', e.file, e.path)
  return fd
}

/** sends with the upload bar; a 401 asks for the token once */
async function send<T> (src: Source, path: string, fd: () => FormData, what: string): Promise<T> {
  const bar = byId<HTMLProgressElement>('upload-progress')
  const status = byId('submit-status')
  for (let attempt = 0; ; attempt++) {
    show(bar, true)
    bar.value = 0
    setText(status, `${what}…`)
    try {
      return await postForm<T>(src, path, fd(), (x) => { bar.value = x; setText(status, `${what}: ${Math.round(x * 100)}%`) })
    } catch (e) {
      if ((e as NodeError).status === 401 && attempt === 0 && await askToken(src, tokenOf(src) !== undefined)) continue
      throw e
    }
  }
}

const sent = clearFiles

async function sendTask (src: Source): Promise<void> {
  const task = await send<TaskView>(src, '/api/v1/tasks', form, `Sending to ${src.name}`)
  src.setTask(task)
  if (!src.self) app.lan.tracked.add(src.id)
  setText(byId('submit-status'), `Task ${task.id} sent to ${src.name}: its state is in the list of tasks.`)
  // the address is the task's now: a reload shows it and submits nothing
  history.replaceState(null, '', taskUrl(src, task.id))
  sent()
  focusTask(src, task.id)
}

/** each G-code file as a job of the queue of the node chosen for the group or printer */
async function sendJobs (farm: FarmTarget, files: Entry[]): Promise<void> {
  const { src } = farm
  const where = farm.group !== undefined ? `group ${farm.group}` : `printer ${farm.printer}`
  let job: JobView | undefined
  for (const e of files) {
    job = await send<JobView>(src, '/api/v1/queue', () => {
      const fd = new FormData()
      if (farm.group !== undefined) fd.append('group', farm.group)
      else fd.append('printer', farm.printer!)
      fd.append('copies', String(farm.copies))
      fd.append('file', e.file, baseName(e.path))
      return fd
    }, `Sending ${baseName(e.path)} to the queue of ${src.name}`)
    src.jobs = [...(src.jobs ?? []).filter((j) => j.id !== job!.id), job]
  }
  if (!job) return
  if (!src.self) app.lan.tracked.add(src.id)
  src.queueChanged(changed)
  app.focusJob = { node: src.id, id: job.id }
  const copies = `${farm.copies} cop${farm.copies === 1 ? 'y' : 'ies'}`
  setText(byId('submit-status'), files.length === 1
    ? `Job ${job.id} (${job.name}, ${copies}) queued on ${src.name} for ${where}: it is in the farm queue.`
    : `${files.length} jobs (${copies} each) queued on ${src.name} for ${where}: they are in the farm queue.`)
  // the address is the job's now: a reload shows it and queues nothing
  history.replaceState(null, '', jobUrl(src, job.id))
  sent()
}

/** the chain to this node, which drives it: its stages, then the farm queue when a group or printer is chosen */
async function sendChain (stages: string[], farm: FarmTarget | undefined): Promise<void> {
  const src = app.self
  const p = await send<PipelineView>(src, '/api/v1/pipelines', () => chainForm(stages, farm), `Sending the chain to ${src.name}`)
  src.setPipeline(p)
  setText(byId('submit-status'), chainSent(p))
  // the address is the pipeline's now: a reload shows it and submits nothing
  history.replaceState(null, '', pipelineUrl(p.id))
  sent()
  focusPipeline(p.id)
}

async function submit (): Promise<void> {
  const status = byId('submit-status')
  if (sending) return
  await guessing
  const stages = chain()
  const farm = farmTarget(target())
  const problem = stages && chainProblem(stages, farm)
  if (problem) { setText(status, problem); return }
  const gcode = entries.filter((e) => e.role !== 'skip' && GCODE.includes(extOf(e.path)))
  if (!stages && farm && !gcode.length) { setText(status, 'Choose a G-code file to print first.'); return }
  if (!stages && farm && !(Number.isInteger(farm.copies) && farm.copies >= 1 && farm.copies <= 1000)) { setText(status, 'Copies: a whole number from 1 to 1000.'); return }
  if (!stages && !farm && !entries.some((e) => e.role === 'input' || e.role === 'config')) { setText(status, 'Choose or drop a file to send first.'); return }
  const src = stages ? app.self : farm?.src ?? target()
  const button = byId('submit-form').querySelector('input[type=submit]') as HTMLInputElement
  sending = true
  button.disabled = true
  try {
    if (src.info.tokenRequired && !tokenOf(src) && !await askToken(src)) throw new NodeError(401, `${src.name} needs a token`)
    if (stages) await sendChain(stages, farm)
    else if (farm) await sendJobs(farm, gcode)
    else await sendTask(src)
  } catch (e) {
    setText(status, `Not sent: ${(e as Error).message}`)
  } finally {
    sending = false
    button.disabled = false
    show(byId('upload-progress'), false)
    changed()
  }
}

/** the services and printers of the node chosen, and the chains of the LAN; with a G-code file or a chain, where the farm prints it */
function fillChoices (): void {
  const src = target()
  const select = byId<HTMLSelectElement>('submit-service')
  const was = select.value
  const names = src.info.services
  const chains = chainChoices()
  const values = [...names, ...chains.map(([v]) => v)]
  if ([...select.options].map((o) => o.value).join() !== values.join()) {
    select.replaceChildren(...names.map((s) => h('option', null, s)), chainGroup(chains))
    if (values.includes(was)) select.value = was
  }
  const stages = chain()
  const printers = byId<HTMLSelectElement>('submit-printer')
  const pn = src.info.printers.map((p) => p.name)
  if ([...printers.options].map((o) => o.value).join() !== pn.join()) {
    const had = printers.value
    printers.replaceChildren(...pn.map((p) => h('option', null, p)))
    if (pn.includes(had)) printers.value = had
  }
  const gcode = entries.some((e) => e.role !== 'skip' && GCODE.includes(extOf(e.path)))
  fillFarmChoices(Boolean(stages) || gcode, stages ? (needsPrinter(stages) ? 'choose a group or printer' : 'no printing: keep the G-code') : undefined)
  const farm = farmTarget(src) !== undefined
  // a chain keeps its Service choice; a G-code file queued needs none
  show(select.parentElement!, Boolean(stages) || !farm)
  show(byId('printer-field'), !stages && !farm && select.value === 'printrun' && pn.length > 0)
  const node = byId('submit-node').parentElement as HTMLElement
  show(node, !stages && node.dataset.many === '1')
  const button = byId('submit-form').querySelector('input[type=submit]') as HTMLInputElement
  button.value = stages ? 'Send the chain' : farm ? 'Queue' : 'Submit'
}

/** what the files are for: one service's, or the chain's first stage (models) and slicer (configs) */
const fileChoice = () => {
  const stages = chain()
  return { target: stages ? app.self : target(), ...(stages ? chainRoles(stages) : { model: service(), config: service() }) }
}

export function initSubmit (): void {
  const f = byId<HTMLFormElement>('submit-form')
  for (const el of f.querySelectorAll<HTMLElement>('.js')) el.hidden = false
  initFiles(fileChoice, fillChoices)
  const onChoice = () => { fillChoices(); rechoose() }
  byId('submit-node').addEventListener('change', onChoice)
  byId('submit-service').addEventListener('change', onChoice)
  byId('submit-farm').addEventListener('change', fillChoices)
  f.addEventListener('submit', (e) => { e.preventDefault(); void submit() })
}

onRender(() => {
  // the nodes that offer something, this one first
  const node = byId<HTMLSelectElement>('submit-node')
  const nodes = [...app.sources.values()].filter((s) => s.info.services.length > 0)
    .sort((a, b) => Number(b.self) - Number(a.self) || a.name.localeCompare(b.name))
  const key = nodes.map((s) => `${s.id}:${s.name}`).join()
  if (node.dataset.nodes !== key) {
    const was = node.value || app.self.id
    node.dataset.nodes = key
    node.replaceChildren(...nodes.map((s) => h('option', { value: s.id }, s.self ? `${s.name} (this node)` : s.name)))
    node.value = nodes.some((s) => s.id === was) ? was : app.self.id
    ;(node.parentElement as HTMLElement).dataset.many = nodes.length < 2 ? '' : '1'
  }
  fillChoices()
})
