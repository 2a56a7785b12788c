// Printers of the LAN: farm state and groups, print, time left, temperatures with a graph of the
// last minutes, and pause, resume, cancel, emergency stop and "bed is clear", sent to the node that
// has the printer.
import { changed, onRender, say } from './app.js'
import { ask } from './dialog.js'
import { byId, h, setText, show, syncList } from './dom.js'
import { lanPrinters, type LanPrinter } from './farm.js'
import { duration, heaterName, percent } from './format.js'
import { tempGraph } from './graph.js'
import type { Source } from './model.js'
import { call, getJson } from './net.js'

type Item = LanPrinter

/** what a finished or failed printer's bed holds and why it failed (GET /api/v1/printers/:name), by node/printer */
const beds = new Map<string, { state: string, file?: string, error?: string }>()

function lookAtBed (src: Source, name: string, state: string): void {
  const key = `${src.id}/${name}`
  if (beds.get(key)?.state === state) return
  beds.set(key, { state })
  getJson<{ state: string, job?: { file?: string }, error?: string }>(src, `/api/v1/printers/${encodeURIComponent(name)}`).then((r) => {
    if (!r.body || beds.get(key)?.state !== state) return
    beds.set(key, { state, file: r.body.job?.file, error: r.body.error })
    changed()
  }, () => {})
}

/** a printer's action, told in the live region; errors too */
async function act (what: string, run: () => Promise<unknown>): Promise<void> {
  try {
    await run()
    say(`${what}: done.`)
  } catch (e) {
    say(`${what}: ${(e as Error).message}`)
  }
  changed()
}

function card ({ src, p }: Item): HTMLElement {
  const label = `${p.name} on ${src.name}`
  const button = (text: string, cls: string, onclick: () => void) => h('button', { type: 'button', class: cls, 'aria-label': `${text}: ${label}`, onclick }, text)
  const task = () => src.printers.get(p.name)?.print?.task
  return h('article', { class: 'printer', 'aria-label': `Printer ${label}` },
    h('h3', null, p.name, ' ', h('small', null, `on ${src.name}`)),
    h('p', { class: 'groups' }),
    h('p', null, h('span', { class: 'state' }), ' ', h('span', { class: 'bed' }), ' ', h('span', { class: 'err' })),
    h('div', { class: 'job' },
      h('p', { class: 'job-text' }),
      h('progress', { max: 100, value: 0, 'aria-label': `Print progress of ${label}` })),
    h('p', { class: 'temps' }),
    h('div', { class: 'graph-box' }),
    h('p', { class: 'tools' },
      button('Pause', 'pause', () => { const t = task(); if (t) void act(`Pause ${label}`, () => call(src, 'POST', `/api/v1/tasks/${t}/pause`)) }),
      button('Resume', 'resume', () => { const t = task(); if (t) void act(`Resume ${label}`, () => call(src, 'POST', `/api/v1/tasks/${t}/resume`)) }),
      button('Cancel', 'cancel', async () => {
        const t = task()
        if (t && await ask(`Cancel the print on ${label}? Heaters, fan and motors are turned off.`, { ok: 'Cancel the print', danger: true })) {
          void act(`Cancel ${label}`, () => call(src, 'DELETE', `/api/v1/tasks/${t}`))
        }
      }),
      button('Bed is clear', 'clear', () => { void act(`Bed of ${label} clear`, () => call(src, 'POST', `/api/v1/printers/${encodeURIComponent(p.name)}/clear`)) }),
      button('Emergency stop', 'estop danger', async () => {
        if (await ask(`Emergency stop ${label}? M112 halts the printer at once; it must be restarted before it prints again.`, { ok: 'Emergency stop', danger: true })) {
          void act(`Emergency stop ${label}`, () => call(src, 'POST', `/api/v1/printers/${encodeURIComponent(p.name)}/estop`))
        }
      })))
}

function update (el: HTMLElement, { src, p, state: farm, groups }: Item): void {
  const state = el.querySelector('.state') as HTMLElement
  setText(state, farm)
  state.className = `state p-${farm}`
  const groupsEl = el.querySelector('.groups') as HTMLElement
  if (groupsEl.dataset.groups !== groups.join()) {
    groupsEl.dataset.groups = groups.join()
    groupsEl.replaceChildren(...(groups.length ? [h('span', { class: 'vh' }, groups.length === 1 ? 'Group: ' : 'Groups: ')] : []),
      ...groups.map((g) => h('span', { class: 'group' }, g)))
  }
  show(groupsEl, groups.length > 0)
  const held = farm === 'finished' || farm === 'error'
  if (held) lookAtBed(src, p.name, farm)
  else beds.delete(`${src.id}/${p.name}`)
  const bed = held ? beds.get(`${src.id}/${p.name}`) : undefined
  setText(el.querySelector('.bed')!, farm === 'finished' ? `the bed holds a print${bed?.file ? ` (${bed.file})` : ''}` : '')
  setText(el.querySelector('.err')!, p.error ?? bed?.error ?? (p.state === 'halted' || farm === 'error' || farm === 'disconnected' ? p.lastError ?? '' : ''))
  const job = p.print
  const jobBox = el.querySelector('.job') as HTMLElement
  show(jobBox, Boolean(job))
  if (job) {
    const bits = [job.file ?? p.job?.name ?? p.job?.file ?? '', job.task ? `task ${job.task}` : '', job.percent !== undefined ? percent(job.percent) : '',
      job.remainingMs !== undefined ? `about ${duration(job.remainingMs)} left` : '', job.elapsedMs !== undefined ? `${duration(job.elapsedMs)} so far` : '']
    setText(el.querySelector('.job-text')!, bits.filter(Boolean).join(' · '))
    const bar = el.querySelector('progress')!
    if (bar.value !== (job.percent ?? 0)) bar.value = job.percent ?? 0
  }
  const heaters = Object.entries(p.heaters ?? {})
  setText(el.querySelector('.temps')!, heaters.map(([k, v]) => `${heaterName(k)} ${v.actual.toFixed(1)} / ${v.target} °C`).join(' · '))
  const history = src.history.get(p.name) ?? []
  const box = el.querySelector('.graph-box') as HTMLElement
  const stamp = `${history.length}:${history[history.length - 1]?.[0] ?? 0}`
  if (box.dataset.stamp !== stamp) {
    box.dataset.stamp = stamp
    box.replaceChildren(...(history.length ? [tempGraph(history)] : []))
  }
  const busy = p.state === 'printing' || p.state === 'paused' || p.state === 'busy'
  const tools = el.querySelector('.tools')!
  show(tools.querySelector('.pause') as HTMLElement, Boolean(job?.task) && (p.state === 'printing' || p.state === 'busy'))
  show(tools.querySelector('.resume') as HTMLElement, Boolean(job?.task) && p.state === 'paused')
  show(tools.querySelector('.cancel') as HTMLElement, Boolean(job?.task) && busy)
  show(tools.querySelector('.clear') as HTMLElement, held)
  show(tools.querySelector('.estop') as HTMLElement, !['disconnected', 'closed', 'halted', 'connecting'].includes(p.state))
}

onRender(() => {
  const items = lanPrinters()
  const box = byId('printer-cards')
  if (!items.length) {
    if (!box.querySelector('.note') || box.children.length !== 1) box.replaceChildren(h('p', { class: 'note' }, 'No printer on the LAN.'))
    return
  }
  syncList(box, items, (i) => `${i.src.id}/${i.p.name}`, card, update)
})
