// The files of the submit form: dropped or chosen (a model with the files it uses, a folder,
// several STLs, a slicer config), each with a role guessed from its extension and the service,
// which the user may change.
import { byId, h } from './dom.js'
import type { Source } from './model.js'

export type Role = 'input' | 'config' | 'file' | 'skip'
export interface Entry { file: File, path: string, role: Role, manual: boolean }
interface Descriptor { name: string, available: boolean, argInput: string[], inputs: [number, number | null] }

/** which service's models are the inputs, and which service's config a config file is (for a chain, two) */
export interface FileChoice { target: Source, model: string, config: string }

/** the extensions a service's main input has; others go along as files of the project */
export const MODELS: Record<string, string[]> = {
  openscad: ['scad'], openjscad: ['jscad', 'js'], slic3r: ['stl', 'obj', 'amf', '3mf'], povray: ['pov'], printrun: ['gcode', 'gco', 'g'],
}
const CONFIGS = ['ini', 'conf', 'config', 'cfg']

export let entries: Entry[] = []
/** the prearg of a config file for the service chosen (`--load=`), when it takes one */
export let configPrefix: string | undefined
/** the roles being worked out for the files added last */
export let guessing: Promise<void> = Promise.resolve()
const descriptors = new Map<string, Promise<Descriptor[]>>()
let choice: () => FileChoice
let changed: () => void

export const extOf = (path: string): string => (path.includes('.') ? path.split('.').pop()! : '').toLowerCase()
export const baseName = (path: string): string => path.split('/').pop()!

function descriptorsOf (src: Source): Promise<Descriptor[]> {
  let d = descriptors.get(src.id)
  if (!d) {
    d = fetch(`${src.base}/api/v1/services`).then((r) => r.ok ? r.json() as Promise<Descriptor[]> : [], () => [])
    descriptors.set(src.id, d)
  }
  return d
}

async function refreshPrefix (): Promise<Descriptor[]> {
  const c = choice()
  const all = await descriptorsOf(c.target)
  configPrefix = all.find((x) => x.name === c.config)?.argInput?.[0]
  return all
}

/** what each file is, by its extension and the service, unless the user said otherwise */
async function guessRoles (): Promise<void> {
  const c = choice()
  const d = (await refreshPrefix()).find((x) => x.name === c.model)
  const max = d?.inputs?.[1] ?? Infinity
  const models = MODELS[c.model]
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

/** the service (or chain) changed: roles are worked out again */
export function rechoose (): void { guessing = guessRoles() }

export function renderFiles (): void {
  const list = byId('file-list')
  const prefix = configPrefix
  list.replaceChildren(...entries.map((e, i) => {
    const select = h('select', { 'aria-label': `What ${e.path} is` },
      h('option', { value: 'input' }, 'model / input'),
      prefix ? h('option', { value: 'config' }, `config (${prefix})`) : null,
      h('option', { value: 'file' }, 'file of the project'),
      h('option', { value: 'skip' }, 'leave out'))
    select.value = e.role === 'config' && !prefix ? 'file' : e.role
    select.addEventListener('change', () => { e.role = select.value as Role; e.manual = true; changed() })
    return h('li', null, h('span', { class: 'path' }, e.path), ' ', h('small', null, `${Math.ceil(e.file.size / 1024)} KiB`), ' ', select, ' ',
      h('button', { type: 'button', 'aria-label': `Remove ${e.path}`, onclick: () => { entries.splice(i, 1); renderFiles() } }, 'Remove'))
  }))
  changed()
}

/** the files by what they are: configs (only when the service takes one), inputs, files of the project */
export function byRole (): { configs: Entry[], inputs: Entry[], files: Entry[] } {
  return {
    configs: entries.filter((e) => e.role === 'config' && configPrefix),
    inputs: entries.filter((e) => e.role === 'input'),
    files: entries.filter((e) => e.role === 'file' || (e.role === 'config' && !configPrefix)),
  }
}

/** after a submit: the list is empty again */
export function clearFiles (): void {
  entries = []
  renderFiles()
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

/** the file and folder inputs and the drop zone; `choose` says what the files are for now */
export function initFiles (choose: () => FileChoice, onChange: () => void): void {
  choice = choose
  changed = onChange
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
  void refreshPrefix()
}
