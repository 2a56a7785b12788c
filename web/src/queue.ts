// Farm queue: the jobs of the queues the page follows (this node's, those of nodes with printers in
// groups, those a job was sent to), per group and then those sent to one printer by name, each in
// its node's order, with their copies; remove, move up and down, pause and resume a group. Read
// again on `queue` events (and `reset`).
import { app, changed, onRender, say } from './app.js'
import { ask } from './dialog.js'
import { byId, h, setText, show, syncList } from './dom.js'
import { lanGroups, lanPrinters } from './farm.js'
import type { JobView, Source } from './model.js'
import { call } from './net.js'

interface Item { src: Source, j: JobView }
interface Block { key: string, title: string, group?: string, note: string, items: Item[] }

const ENDED = ['complete', 'failed', 'cancelled']
const waiting = (j: JobView) => j.counts.queued > 0
const jobKey = (src: Source, id: string) => `${src.id}/${id}`

/** the queues the page shows */
const queues = (): Source[] => [...app.sources.values()].filter((s) => s.followsQueue(app.lan) && s.jobs !== undefined)

async function act (what: string, run: () => Promise<unknown>): Promise<boolean> {
  try {
    await run()
    say(`${what}: done.`)
    return true
  } catch (e) {
    say(`${what}: ${(e as Error).message}`)
    return false
  } finally {
    changed()
  }
}

function reload (src: Source): void { src.queueChanged(changed) }

async function remove ({ src, j }: Item): Promise<void> {
  const printing = j.counts.printing + j.counts.starting
  if (!await ask(`Remove job ${j.name} (${j.id}) from the queue of ${src.name}?${printing ? ` Its ${printing} cop${printing === 1 ? 'y' : 'ies'} printing go on.` : ''}`, { ok: 'Remove the job', danger: true })) return
  if (await act(`Remove job ${j.name}`, () => call(src, 'DELETE', `/api/v1/queue/${j.id}`))) {
    src.jobs = src.jobs?.filter((x) => x.id !== j.id)
    reload(src)
  }
}

async function move ({ src, j }: Item, to: number, dir: 'up' | 'down'): Promise<void> {
  const ok = await act(`Move job ${j.name} ${dir}`, async () => {
    src.jobs = await call<JobView[]>(src, 'POST', `/api/v1/queue/${j.id}/move`, { to })
  })
  if (ok) refocus = { key: jobKey(src, j.id), cls: dir }
}

async function hold (group: string | undefined, op: 'pause' | 'resume'): Promise<void> {
  const what = `${op === 'pause' ? 'Pause' : 'Resume'} ${group ? `group ${group}` : 'the whole queue'}`
  await act(what, () => Promise.all(queues().map(async (src) => {
    const r = await call<{ paused: string[] }>(src, 'POST', `/api/v1/queue/${op}`, group ? { group } : {})
    src.paused.clear()
    for (const g of r.paused) src.paused.add(g)
    reload(src)
  })))
}

/** the text of a job's copies: done, printing, waiting, failed (and cancelled when some were) */
function copiesText (j: JobView): string {
  const c = j.counts
  const parts = [`${c.complete} done`, `${c.printing + c.starting} printing`, `${c.queued} waiting`, `${c.failed} failed`]
  if (c.cancelled) parts.push(`${c.cancelled} cancelled`)
  return parts.join(' · ')
}

function jobState (j: JobView): string {
  const c = j.counts
  if (j.copies.every((x) => ENDED.includes(x.status))) return c.complete ? 'done' : c.failed ? 'failed' : 'cancelled'
  if (c.printing + c.starting > 0) return 'printing'
  return j.paused ? 'paused' : 'waiting'
}
const STATE_CLASS: Record<string, string> = { done: 's-complete', printing: 's-busy', waiting: 's-queued', paused: 's-paused', failed: 's-failed', cancelled: 's-cancelled' }

function row ({ src, j }: Item): HTMLTableRowElement {
  const item = () => ({ src, j: src.jobs?.find((x) => x.id === j.id) ?? j })
  const label = `job ${j.name} (${j.id})`
  const button = (text: string, cls: string, aria: string, onclick: () => void) => h('button', { type: 'button', class: cls, 'aria-label': aria, onclick }, text)
  return h('tr', null,
    h('td', { 'data-label': 'Position', class: 'pos' }),
    h('td', { 'data-label': 'Job' }, h('span', { class: 'name' }, j.name), ' ', h('small', { class: 'where' })),
    h('td', { 'data-label': 'Copies' }, h('span', { class: 'counts' }), ' ', h('small', { class: 'on' }), h('small', { class: 'err' })),
    h('td', { 'data-label': 'State' }, h('span', { class: 'state' })),
    h('td', { class: 'actions' },
      button('Up', 'up', `Move ${label} up`, () => { const x = item(); const to = neighbour(x, -1); if (to) void move(x, to, 'up') }),
      button('Down', 'down', `Move ${label} down`, () => { const x = item(); const to = neighbour(x, 1); if (to) void move(x, to, 'down') }),
      button('Remove', 'remove', `Remove ${label}`, () => { void remove(item()) })))
}

/** the position of the job before (or after) this one in its block, on the same node: where a move puts it */
function neighbour ({ src, j }: Item, step: -1 | 1): number | undefined {
  const list = (src.jobs ?? []).filter((x) => waiting(x) && (j.group !== undefined ? x.group === j.group : x.printer !== undefined))
  return list[list.findIndex((x) => x.id === j.id) + step]?.position
}

function update (tr: HTMLTableRowElement, { src, j }: Item): void {
  const [pos, job, copies, stateTd, actions] = [...tr.children] as HTMLElement[]
  setText(pos, String(j.position))
  setText(job.querySelector('.where')!, [j.id, j.printer ? `for printer ${j.printer}` : '', src.self ? '' : `on ${src.name}`, `${j.copies.length} cop${j.copies.length === 1 ? 'y' : 'ies'}`].filter(Boolean).join(', '))
  setText(copies.querySelector('.counts')!, copiesText(j))
  const on = [...new Set(j.copies.filter((c) => c.status === 'printing' || c.status === 'starting').map((c) => c.printer).filter(Boolean))]
  setText(copies.querySelector('.on')!, on.length ? `on ${on.join(', ')}` : '')
  setText(copies.querySelector('.err')!, j.copies.filter((c) => c.error).map((c) => ` copy ${c.n}: ${c.error}`).join(';'))
  const s = jobState(j)
  const state = stateTd.querySelector('.state') as HTMLElement
  setText(state, s)
  state.className = `state ${STATE_CLASS[s]}`
  const up = actions.querySelector('.up') as HTMLButtonElement
  const down = actions.querySelector('.down') as HTMLButtonElement
  show(up, waiting(j))
  show(down, waiting(j))
  up.disabled = neighbour({ src, j }, -1) === undefined
  down.disabled = neighbour({ src, j }, 1) === undefined
  const focused = app.focusJob?.node === src.id && app.focusJob.id === j.id
  tr.classList.toggle('focus', focused)
  if (focused) tr.setAttribute('aria-current', 'true')
  else tr.removeAttribute('aria-current')
}

function block (b: Block): HTMLElement {
  const id = `queue-${b.key.replace(/[^\w-]/g, '_')}`
  const button = (text: string, cls: string, op: 'pause' | 'resume') =>
    h('button', { type: 'button', class: cls, 'aria-label': `${text} the queue of ${b.group ? `group ${b.group}` : 'every group'}`, onclick: () => { void hold(b.group, op) } }, text)
  return h('section', { class: 'qgroup', 'aria-labelledby': id },
    h('h3', { id }, b.title, ' ', h('small', { class: 'qnote' })),
    h('p', { class: 'tools' }, h('span', { class: 'held' }), b.group ? button('Pause', 'pause', 'pause') : null, b.group ? button('Resume', 'resume', 'resume') : null),
    h('table', null,
      h('caption', { class: 'vh' }, `Jobs ${b.group ? `for group ${b.group}` : 'for one printer'}, in order`),
      h('thead', null, h('tr', null, ...['#', 'Job', 'Copies', 'State'].map((c) => h('th', { scope: 'col' }, c)), h('th', { scope: 'col' }, h('span', { class: 'vh' }, 'Actions')))),
      h('tbody')),
    h('p', { class: 'note empty' }, 'No jobs.'))
}

function updateBlock (el: HTMLElement, b: Block): void {
  setText(el.querySelector('.qnote')!, b.note)
  const held = queues().filter((s) => s.paused.has('*') || (b.group !== undefined && s.paused.has(b.group)))
  const all = queues().length
  const heldEl = el.querySelector('.held') as HTMLElement
  setText(heldEl, held.length ? `Held: nothing new starts${all > 1 ? ` (on ${held.map((s) => s.name).join(', ')})` : ''}.` : '')
  show(heldEl, held.length > 0)
  if (b.group) {
    show(el.querySelector('.pause') as HTMLElement, held.length < all)
    show(el.querySelector('.resume') as HTMLElement, held.length > 0)
  }
  show(el.querySelector('table')!, b.items.length > 0)
  show(el.querySelector('.empty') as HTMLElement, b.items.length === 0)
  syncList(el.querySelector('tbody')!, b.items, (i) => jobKey(i.src, i.j.id), row, update)
}

/** after a move the row is elsewhere in the list: its button keeps the focus */
let refocus: { key: string, cls: string } | undefined
let scrolledTo = ''

onRender(() => {
  const list = queues()
  const items: Item[] = list.flatMap((src) => (src.jobs ?? []).map((j) => ({ src, j })))
  const groups = lanGroups()
  for (const { j } of items) if (j.group && !groups.has(j.group)) groups.set(j.group, [])
  const on = list.length > 0 && (items.length > 0 || groups.size > 0 || lanPrinters().length > 0)
  show(byId('queue'), on)
  show(byId('queue-link'), on)
  if (!on) return
  const order = (a: Item, b: Item) => Number(b.src.self) - Number(a.src.self) || a.src.name.localeCompare(b.src.name) || a.j.position - b.j.position
  const blocks: Block[] = [...groups].map(([g, printers]) => ({
    key: `g:${g}`, title: `Group ${g}`, group: g,
    note: printers.length ? `${printers.length} printer${printers.length === 1 ? '' : 's'}: ${printers.map((x) => x.p.name).join(', ')}` : 'no printer of the group is seen now',
    items: items.filter((i) => i.j.group === g).sort(order),
  }))
  const named = items.filter((i) => i.j.printer !== undefined).sort(order)
  if (named.length) blocks.push({ key: 'printer', title: 'One printer', note: 'jobs sent to a printer by name', items: named })
  syncList(byId('queue-list'), blocks, (b) => b.key, block, updateBlock)
  const anyHeld = list.some((s) => s.paused.size > 0)
  show(byId('queue-pause-all'), list.some((s) => !s.paused.has('*')))
  show(byId('queue-resume-all'), anyHeld)
  if (refocus && document.activeElement === document.body) {
    const tr = byId('queue-list').querySelector(`tr[data-key="${CSS.escape(refocus.key)}"]`)
    const b = tr?.querySelector<HTMLButtonElement>(`button.${refocus.cls}`)
    if (b && !b.disabled) b.focus()
    else tr?.querySelector<HTMLButtonElement>('button:not([disabled])')?.focus()
  }
  refocus = undefined
  // the job the URL names, once it is listed
  const f = app.focusJob
  if (f && scrolledTo !== `${f.node}/${f.id}`) {
    const tr = byId('queue-list').querySelector(`tr[data-key="${CSS.escape(`${f.node}/${f.id}`)}"]`)
    if (tr) {
      scrolledTo = `${f.node}/${f.id}`
      tr.scrollIntoView({ block: 'nearest' })
    }
  }
})

export function initQueue (): void {
  byId('queue-pause-all').addEventListener('click', () => { void hold(undefined, 'pause') })
  byId('queue-resume-all').addEventListener('click', () => { void hold(undefined, 'resume') })
}
