// Submit: files dropped or chosen (a model with the files it uses, a folder, several STLs, a slicer
// config), a node and a service; sent as the node's multipart form with upload progress, then
// followed live; a G-code file may go to a farm queue instead (submit-farm.ts). The page's address
// becomes the task's (or the job's), so a reload shows it and sends nothing.
import { app, changed, onRender } from './app.js'
import { byId, h, setText, show } from './dom.js'
import type { JobView, Source, TaskView } from './model.js'
import { askToken, NodeError, postForm, tokenOf } from './net.js'
import { farmTarget, fillFarmChoices, GCODE, jobUrl, type FarmTarget } from './submit-farm.js'
import { focusTask, taskUrl } from './tasks.js'

type Role = 'input' | 'config' | 'file' | 'skip'
interface Entry { file: File, path: string, role: Role, manual: boolean }
interface Descriptor { name: string, available: boolean, argInput: string[], inputs: [number, number | null] }

/** the extensions a service's main input has; others go along as files of the project */
const MODELS: Record<string, string[]> = {
  openscad: ['scad'], openjscad: ['jscad', 'js'], slic3r: ['stl', 'obj', 'amf', '3mf'], povray: ['pov'], printrun: ['gcode', 'gco', 'g'],
}
const CONFIGS = ['ini', 'conf', 'config', 'cfg']

let entries: Entry[] = []
let sending = false
/** the roles being worked out for the files added last */
let guessing: Promise<void> = Promise.resolve()
const descriptors = new Map<string, Promise<Descriptor[]>>()

const extOf = (path: string) => (path.includes('.') ? path.split('.').pop()! : '').toLowerCase()
const baseName = (path: string) => path.split('/').pop()!

function descriptorsOf (src: Source): Promise<Descriptor[]> {
  let d = descriptors.get(src.id)
  if (!d) {
    d = fetch(`${src.base}/api/v1/services`).then((r) => r.ok ? r.json() as Promise<Descriptor[]> : [], () => [])
    descriptors.set(src.id, d)
  }
  return d
}

const target = (): Source => app.sources.get(byId<HTMLSelectElement>('submit-node').value) ?? app.self
const service = (): string => byId<HTMLSelectElement>('submit-service').value

/** what each file is, by its extension and the service, unless the user said otherwise */
async function guessRoles (): Promise<void> {
  const s = service()
  const d = (await descriptorsOf(target())).find((x) => x.name === s)
  const max = d?.inputs?.[1] ?? Infinity
  const configPrefix = d?.argInput?.[0]
  prefixCache = configPrefix
  const models = MODELS[s]
  // a model at the top of the folder before one deeper down; main.* first
  const order = [...entries].sort((a, b) => a.path.split('/').length - b.path.split('/').length ||
    Number(/^main\./.test(baseName(b.path))) - Number(/^main\./.test(baseName(a.path))) || a.path.localeCompare(b.path))
  let inputs = entries.filter((e) => e.manual && e.role === 'input').length
  for (const e of order) {
    if (e.manual) continue
    const ext = extOf(e.path)
    if (configPrefix && CONFIGS.includes(ext)) e.role = 'config'
    else if ((!models || models.includes(ext)) && inputs < max) { e.role = 'input'; inputs++ } else e.role = 'file'
  }
  renderFiles()
}

function renderFiles (): void {
  const list = byId('file-list')
  const prefix = currentPrefix()
  list.replaceChildren(...entries.map((e, i) => {
    const select = h('select', { 'aria-label': `What ${e.path} is` },
      h('option', { value: 'input' }, 'model / input'),
      prefix ? h('option', { value: 'config' }, `config (${prefix})`) : null,
      h('option', { value: 'file' }, 'file of the project'),
      h('option', { value: 'skip' }, 'leave out'))
    select.value = e.role === 'config' && !prefix ? 'file' : e.role
    select.addEventListener('change', () => { e.role = select.value as Role; e.manual = true; fillChoices() })
    return h('li', null, h('span', { class: 'path' }, e.path), ' ', h('small', null, `${Math.ceil(e.file.size / 1024)} KiB`), ' ', select, ' ',
      h('button', { type: 'button', 'aria-label': `Remove ${e.path}`, onclick: () => { entries.splice(i, 1); renderFiles() } }, 'Remove'))
  }))
  fillChoices()
}

let prefixCache: string | undefined
function currentPrefix (): string | undefined { return prefixCache }

async function refreshPrefix (): Promise<void> {
  const d = (await descriptorsOf(target())).find((x) => x.name === service())
  prefixCache = d?.argInput?.[0]
}

/** adds files; a folder's own name is taken off their paths */
function add (files: Array<{ file: File, path: string }>): void {
  const kept = files.filter((f) => !f.path.split('/').some((part) => part.startsWith('.')))
  const first = kept[0]?.path.split('/')[0]
  const common = kept.length > 0 && kept.every((f) => f.path.includes('/') && f.path.split('/')[0] === first)
  for (const f of kept) {
    const path = common ? f.path.slice(first.length + 1) : f.path
    entries = entries.filter((e) => e.path !== path)
    entries.push({ file: f.file, path, role: 'file', manual: false })
  }
  guessing = guessRoles()
}

async function walk (entry: FileSystemEntry, out: Array<{ file: File, path: string }>): Promise<void> {
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject))
    out.push({ file, path: entry.fullPath.replace(/^\//, '') })
  } else if (entry.isDirectory) {
    const reader = (entry as FileSystemDirectoryEntry).createReader()
    for (;;) {
      const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject))
      if (!batch.length) break
      for (const e of batch) await walk(e, out)
    }
  }
}

async function dropped (dt: DataTransfer): Promise<void> {
  const roots = [...dt.items].map((i) => i.webkitGetAsEntry?.()).filter((e): e is FileSystemEntry => Boolean(e))
  if (roots.length) {
    const out: Array<{ file: File, path: string }> = []
    for (const r of roots) await walk(r, out)
    add(out)
  } else {
    add([...dt.files].map((file) => ({ file, path: file.webkitRelativePath || file.name })))
  }
}

function form (): FormData {
  const fd = new FormData()
  const s = service()
  fd.append('service', s)
  const printer = byId<HTMLSelectElement>('submit-printer')
  if (s === 'printrun' && printer.value) fd.append('printer', printer.value)
  const prefix = currentPrefix()
  const configs = entries.filter((e) => e.role === 'config' && prefix)
  const inputs = entries.filter((e) => e.role === 'input')
  const files = entries.filter((e) => e.role === 'file' || (e.role === 'config' && !prefix))
  // paths only for a project: a node without a content store takes plain inputs
  const paths = files.length > 0
  let i = 0
  for (const e of [...configs, ...inputs]) {
    fd.append(`fileIn${i}`, e.file, baseName(e.path))
    if (e.role === 'config') fd.append(`prearg${i}`, prefix!)
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

function sent (): void {
  entries = []
  renderFiles()
}

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

async function submit (): Promise<void> {
  const status = byId('submit-status')
  if (sending) return
  await guessing
  const farm = farmTarget(target())
  const gcode = entries.filter((e) => e.role !== 'skip' && GCODE.includes(extOf(e.path)))
  if (farm && !gcode.length) { setText(status, 'Choose a G-code file to print first.'); return }
  if (farm && !(Number.isInteger(farm.copies) && farm.copies >= 1 && farm.copies <= 1000)) { setText(status, 'Copies: a whole number from 1 to 1000.'); return }
  if (!farm && !entries.some((e) => e.role === 'input' || e.role === 'config')) { setText(status, 'Choose or drop a file to send first.'); return }
  const src = farm?.src ?? target()
  const button = byId('submit-form').querySelector('input[type=submit]') as HTMLInputElement
  sending = true
  button.disabled = true
  try {
    if (src.info.tokenRequired && !tokenOf(src) && !await askToken(src)) throw new NodeError(401, `${src.name} needs a token`)
    if (farm) await sendJobs(farm, gcode)
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

/** the services and printers of the node chosen; with a G-code file, where the farm prints it */
function fillChoices (): void {
  const src = target()
  const select = byId<HTMLSelectElement>('submit-service')
  const was = select.value
  const names = src.info.services
  if ([...select.options].map((o) => o.value).join() !== names.join()) {
    select.replaceChildren(...names.map((s) => h('option', null, s)))
    if (names.includes(was)) select.value = was
  }
  const printers = byId<HTMLSelectElement>('submit-printer')
  const pn = src.info.printers.map((p) => p.name)
  if ([...printers.options].map((o) => o.value).join() !== pn.join()) {
    const had = printers.value
    printers.replaceChildren(...pn.map((p) => h('option', null, p)))
    if (pn.includes(had)) printers.value = had
  }
  fillFarmChoices(entries.some((e) => e.role !== 'skip' && GCODE.includes(extOf(e.path))))
  const farm = farmTarget(src) !== undefined
  show(select.parentElement!, !farm)
  show(byId('printer-field'), !farm && select.value === 'printrun' && pn.length > 0)
  const button = byId('submit-form').querySelector('input[type=submit]') as HTMLInputElement
  button.value = farm ? 'Queue' : 'Submit'
}

export function initSubmit (): void {
  const f = byId<HTMLFormElement>('submit-form')
  for (const el of f.querySelectorAll<HTMLElement>('.js')) el.hidden = false
  const filesInput = byId<HTMLInputElement>('files-input')
  const folderInput = byId<HTMLInputElement>('folder-input')
  filesInput.addEventListener('change', () => {
    add([...filesInput.files ?? []].map((file) => ({ file, path: file.name })))
    filesInput.value = ''
  })
  folderInput.addEventListener('change', () => {
    add([...folderInput.files ?? []].map((file) => ({ file, path: file.webkitRelativePath || file.name })))
    folderInput.value = ''
  })
  const drop = byId('drop')
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over') })
  drop.addEventListener('dragleave', () => drop.classList.remove('over'))
  drop.addEventListener('drop', (e) => {
    e.preventDefault()
    drop.classList.remove('over')
    if (e.dataTransfer) void dropped(e.dataTransfer)
  })
  const onChoice = () => { fillChoices(); guessing = refreshPrefix().then(guessRoles) }
  byId('submit-node').addEventListener('change', onChoice)
  byId('submit-service').addEventListener('change', onChoice)
  byId('submit-farm').addEventListener('change', fillChoices)
  f.addEventListener('submit', (e) => { e.preventDefault(); void submit() })
  void refreshPrefix()
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
    ;(node.parentElement as HTMLElement).hidden = nodes.length < 2
  }
  fillChoices()
})
