// Farm queue: this node's queue of print jobs, when the node has one (GET /api/v1/queue); the
// section stays hidden otherwise. `queue` events say when to look again.
import { app } from './app.js'
import { byId, h, show } from './dom.js'
import { getJson } from './net.js'

interface Job { id: string, name?: string, file?: string, group?: string, printer?: string, copies?: number, position?: number, paused?: boolean, counts?: Record<string, number>, status?: string }

let timer: ReturnType<typeof setTimeout> | undefined

function render (jobs: Job[]): void {
  const list = byId('queue-list')
  if (!jobs.length) { list.replaceChildren(h('p', { class: 'note' }, 'The queue is empty.')); return }
  const rows = jobs.map((j) => h('tr', null,
    h('td', { 'data-label': '#' }, String(j.position ?? '')),
    h('td', { 'data-label': 'Job' }, j.name ?? j.file ?? j.id),
    h('td', { 'data-label': 'Where' }, j.group ? `group ${j.group}` : j.printer ? `printer ${j.printer}` : ''),
    h('td', { 'data-label': 'Copies' }, j.counts ? Object.entries(j.counts).filter(([, n]) => n).map(([k, n]) => `${n} ${k}`).join(', ') : String(j.copies ?? '')),
    h('td', { 'data-label': 'State' }, j.paused ? 'paused' : j.status ?? '')))
  list.replaceChildren(h('table', null,
    h('caption', { class: 'vh' }, 'Jobs in the farm queue, in order'),
    h('thead', null, h('tr', null, ...['#', 'Job', 'Where', 'Copies', 'State'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, ...rows)))
}

async function load (): Promise<void> {
  try {
    const r = await getJson<Job[]>(app.self, '/api/v1/queue')
    const on = r.status === 200 && Array.isArray(r.body)
    show(byId('queue'), on)
    show(byId('queue-link'), on)
    if (on) render(r.body!)
  } catch {}
}

/** looks at the queue again soon (a `queue` or `reset` event) */
export function queueChanged (): void {
  clearTimeout(timer)
  timer = setTimeout(() => { void load() }, 200)
}

export function initQueue (): void { void load() }
