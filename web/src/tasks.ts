// Tasks: this node's, newest first, and on request the LAN's; each with its state, progress,
// times, output and log (followed live while the task runs), and cancel, pause, resume.
import { app, changed, onRender, say } from './app.js'
import { ask } from './dialog.js'
import { byId, h, setText, show, syncList } from './dom.js'
import { duration, localTime, percent } from './format.js'
import { FINAL, type Source, type TaskView } from './model.js'
import { call } from './net.js'

interface Item { src: Source, t: TaskView }

const PAGE = 100
let shown = PAGE

export const taskKey = (node: string, id: string): string => `${node}/${id}`

/** the URL that shows a task on the dashboard */
export function taskUrl (src: Source, id: string): string {
  return `/ui/?service=info&id=${encodeURIComponent(id)}${src.self ? '' : `&node=${encodeURIComponent(src.id)}`}`
}

async function change (src: Source, t: TaskView, op: 'pause' | 'resume' | 'cancel'): Promise<void> {
  if (op === 'cancel' && !await ask(`Cancel task ${t.id} (${t.service} on ${src.name})?`, { ok: 'Cancel the task', danger: true })) return
  try {
    const after = op === 'cancel'
      ? await call<TaskView>(src, 'DELETE', `/api/v1/tasks/${t.id}`)
      : await call<TaskView>(src, 'POST', `/api/v1/tasks/${t.id}/${op}`)
    src.setTask(after)
    say(`Task ${t.id}: ${after.status}.`)
  } catch (e) {
    say(`Task ${t.id}: ${(e as Error).message}`)
  }
  changed()
}

export function focusTask (src: Source, id: string): void {
  app.focus = { node: src.id, id }
  openLog(src, id)
  changed()
}

function row ({ src, t }: Item): HTMLTableRowElement {
  const button = (text: string, cls: string, op: 'pause' | 'resume' | 'cancel') =>
    h('button', { type: 'button', class: cls, 'aria-label': `${text} task ${t.id}`, onclick: () => { void change(src, src.tasks.get(t.id) ?? t, op) } }, text)
  const link = h('a', { href: taskUrl(src, t.id) }, t.id)
  link.addEventListener('click', (e) => {
    e.preventDefault()
    history.replaceState(null, '', taskUrl(src, t.id))
    focusTask(src, t.id)
  })
  return h('tr', null,
    h('td', { 'data-label': 'Task' }, link),
    h('td', { 'data-label': 'Service' }, t.service),
    h('td', { 'data-label': 'Node' }, src.name),
    h('td', { 'data-label': 'State' }, h('span', { class: 'state' }), h('small', { class: 'err' })),
    h('td', { 'data-label': 'Progress' }, h('progress', { max: 100, 'aria-label': `Progress of task ${t.id}` }), h('span', { class: 'prog' })),
    h('td', { 'data-label': 'Created' }),
    h('td', { 'data-label': 'Ended' }),
    h('td', { 'data-label': 'Files' },
      h('a', { class: 'out', href: '#', download: true }, 'output'), ' ',
      h('button', { type: 'button', class: 'log-button', 'aria-label': `Log of task ${t.id}`, onclick: () => focusTask(src, t.id) }, 'log')),
    h('td', { class: 'actions' }, button('Pause', 'pause', 'pause'), button('Resume', 'resume', 'resume'), button('Cancel', 'cancel', 'cancel')))
}

function update (tr: HTMLTableRowElement, { src, t }: Item): void {
  const [, , , stateTd, progTd, created, ended, files, actions] = [...tr.children] as HTMLElement[]
  const state = stateTd.querySelector('.state') as HTMLElement
  setText(state, t.status)
  state.className = `state s-${t.status}`
  setText(stateTd.querySelector('.err')!, t.error ? ` ${t.error}` : '')
  const bar = progTd.querySelector('progress')!
  const hasPercent = typeof t.percent === 'number' && !FINAL.has(t.status)
  show(bar, hasPercent)
  if (hasPercent && bar.value !== t.percent) bar.value = t.percent!
  setText(progTd.querySelector('.prog')!, hasPercent ? ` ${percent(t.percent!)}` : (t.progress ?? '').slice(0, 80))
  setText(created, localTime(t.ctime))
  setText(ended, t.etime ? `${localTime(t.etime)} (${duration((t.etime - t.ctime) * 1000)})` : '')
  const out = files.querySelector('.out') as HTMLAnchorElement
  show(out, t.status === 'complete' && Boolean(t.out))
  if (t.out) {
    const href = `${src.base}/${t.out}`
    if (out.getAttribute('href') !== href) out.setAttribute('href', href)
  }
  show(actions.querySelector('.pause') as HTMLElement, t.status === 'busy')
  show(actions.querySelector('.resume') as HTMLElement, t.status === 'paused')
  show(actions.querySelector('.cancel') as HTMLElement, !FINAL.has(t.status))
  const focused = app.focus?.node === src.id && app.focus.id === t.id
  tr.classList.toggle('focus', focused)
  if (focused) tr.setAttribute('aria-current', 'true')
  else tr.removeAttribute('aria-current')
}

// --- the log of one task, followed while it runs ---
let logOf: { src: Source, id: string } | undefined
let logTimer: ReturnType<typeof setTimeout> | undefined

async function pollLog (): Promise<void> {
  const at = logOf
  if (!at) return
  const t = at.src.tasks.get(at.id)
  try {
    const r = await fetch(`${at.src.base}/api/v1/tasks/${at.id}/log`)
    const text = r.ok ? await r.text() : `(no log: ${r.status})`
    if (logOf !== at) return
    const pre = byId('log-text')
    const bottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4
    setText(pre, text || '(nothing yet)')
    if (bottom) pre.scrollTop = pre.scrollHeight
  } catch {}
  // a running task's log grows: look again; an ended one is read once more and left
  if (logOf === at && !(t && FINAL.has(t.status) && byId('log').dataset.final === '1')) {
    byId('log').dataset.final = t && FINAL.has(t.status) ? '1' : ''
    logTimer = setTimeout(() => { void pollLog() }, 1000)
  }
}

function openLog (src: Source, id: string): void {
  clearTimeout(logTimer)
  logOf = { src, id }
  const box = byId('log')
  box.dataset.final = ''
  setText(byId('log-h'), `Log of task ${id} on ${src.name}`)
  setText(byId('log-text'), '')
  show(box, true)
  void pollLog()
}

function closeLog (): void {
  clearTimeout(logTimer)
  logOf = undefined
  show(byId('log'), false)
}

export function initTasks (): void {
  byId('log-close').addEventListener('click', closeLog)
  const toggle = byId<HTMLButtonElement>('lan-tasks')
  toggle.addEventListener('click', () => {
    app.lan.tasks = !app.lan.tasks
    toggle.setAttribute('aria-pressed', String(app.lan.tasks))
    setText(toggle, app.lan.tasks ? "Show this node's tasks only" : "Show the LAN's tasks")
    changed()
  })
}

let scrolledTo = ''
onRender(() => {
  const items: Item[] = []
  for (const src of app.sources.values()) {
    if (!src.self && !app.lan.tasks && !app.lan.tracked.has(src.id)) continue
    for (const t of src.tasks.values()) items.push({ src, t })
  }
  items.sort((a, b) => b.t.ctime - a.t.ctime || b.t.id.localeCompare(a.t.id))
  show(byId('lan-tasks'), app.sources.size > 1)
  if (app.self.tasksLoaded) setText(byId('all-tasks'), `This node's tasks as a table (${app.self.tasks.size})`)
  const more = byId('tasks-more')
  if (items.length > shown) {
    more.replaceChildren(h('button', { type: 'button', onclick: () => { shown += PAGE; changed() } }, `Show ${Math.min(PAGE, items.length - shown)} more of ${items.length - shown}`))
  } else more.replaceChildren()
  syncList(byId('task-rows'), items.slice(0, shown), (i) => taskKey(i.src.id, i.t.id), row, update)
  // the task the URL names, once it is listed
  const f = app.focus
  if (f && scrolledTo !== taskKey(f.node, f.id)) {
    const src = app.sources.get(f.node)
    const tr = byId('task-rows').querySelector(`tr[data-key="${CSS.escape(taskKey(f.node, f.id))}"]`)
    if (src && tr) {
      scrolledTo = taskKey(f.node, f.id)
      tr.scrollIntoView({ block: 'nearest' })
      if (!logOf || logOf.id !== f.id) openLog(src, f.id)
    }
  }
})
