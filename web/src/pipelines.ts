// Pipelines this node drives (and, with the LAN's tasks, those its peers drive), newest first, in
// the tasks section: each with its stages (service, node, state, progress), its state and times,
// the last output once complete, the farm job its G-code became, and cancel; kept live by the
// nodes' `pipeline` events.
import { app, changed, onRender, say } from './app.js'
import { ask } from './dialog.js'
import { byId, h, setText, show, syncList } from './dom.js'
import { duration, localTime, percent } from './format.js'
import { FINAL, type PipelineView, type Source, type StageView } from './model.js'
import { call } from './net.js'
import { jobUrl } from './submit-farm.js'
import { focusTask, taskUrl } from './tasks.js'

const PAGE = 20
let shown = PAGE

/** the URL that shows a pipeline on the dashboard */
export const pipelineUrl = (id: string): string => `/ui/?pipeline=${encodeURIComponent(id)}`

const outputOf = (p: PipelineView): StageView | undefined => {
  const last = p.stages[p.stages.length - 1]
  return p.status === 'complete' && last?.out ? last : undefined
}

interface Item { src: Source, p: PipelineView }

async function cancel (src: Source, p: PipelineView): Promise<void> {
  const running = p.stages[p.stage]
  if (!await ask(`Cancel pipeline ${p.id}${running ? ` (now at ${running.service})` : ''}? The stages after it do not run.`, { ok: 'Cancel the pipeline', danger: true })) return
  try {
    src.setPipeline(await call<PipelineView>(src, 'POST', `/api/v1/pipelines/${p.id}/cancel`))
    say(`Pipeline ${p.id}: cancelling.`)
  } catch (e) {
    say(`Pipeline ${p.id}: ${(e as Error).message}`)
  }
  changed()
}

export function focusPipeline (id: string): void {
  app.focusPipeline = id
  changed()
}

function stageItem (s: StageView): HTMLLIElement {
  return h('li', null,
    h('span', { class: 'svc' }, s.service), ' ', h('small', { class: 'where' }), ' ',
    h('span', { class: 'state' }), ' ',
    h('progress', { max: 100, 'aria-label': `Progress of stage ${s.n} (${s.service})` }), h('span', { class: 'prog' }),
    h('small', { class: 'err' }))
}

function updateStage (li: HTMLLIElement, s: StageView): void {
  const where = li.querySelector('.where') as HTMLElement
  // a stage's task is shown from the node it ran on, when the page knows that node
  const at = s.nodeId !== undefined ? app.sources.get(s.nodeId) : undefined
  const label = s.node ? `on ${s.node}${s.printer ? `, printer ${s.printer}` : ''}` : ''
  // a stage of a node the page knows links to its task (and its log)
  const key = `${label}|${at ? `${at.id}/${s.task ?? ''}` : ''}`
  if (where.dataset.key !== key) {
    where.dataset.key = key
    const task = s.task && at
      ? h('a', { href: taskUrl(at, s.task), onclick: (e: Event) => { e.preventDefault(); focusTask(at, s.task!) } }, `task ${s.task}`)
      : null
    where.replaceChildren(label, task ? ', ' : '', task ?? '')
  }
  const state = li.querySelector('.state') as HTMLElement
  setText(state, s.state)
  state.className = `state s-${s.state}`
  const bar = li.querySelector('progress')!
  const busy = s.state === 'busy' && typeof s.percent === 'number'
  show(bar, busy)
  if (busy && bar.value !== s.percent) bar.value = s.percent!
  setText(li.querySelector('.prog')!, busy ? ` ${percent(s.percent!)}` : s.state === 'busy' ? (s.progress ?? '').slice(0, 60) : '')
  setText(li.querySelector('.err')!, s.error && s.state !== 'complete' ? ` ${s.error}` : '')
}

function queueItem (): HTMLLIElement {
  return h('li', { class: 'farm' }, h('span', { class: 'svc' }, 'farm queue'), ' ', h('small', { class: 'where' }), ' ', h('span', { class: 'job' }))
}

function updateQueue (li: HTMLLIElement, { src, p }: Item): void {
  const q = p.queue!
  setText(li.querySelector('.where')!, `${q.group !== undefined ? `group ${q.group}` : `printer ${q.printer}`}, ${q.copies} cop${q.copies === 1 ? 'y' : 'ies'}`)
  const job = li.querySelector('.job') as HTMLElement
  if (job.dataset.job !== (q.job ?? '')) {
    job.dataset.job = q.job ?? ''
    job.replaceChildren(q.job ? h('a', { href: jobUrl(src, q.job) }, `job ${q.job}`) : h('span', { class: `state s-${p.status === 'running' ? 'waiting' : 'cancelled'}` }, p.status === 'running' ? 'waiting' : 'not queued'))
  }
}

function row ({ src, p }: Item): HTMLTableRowElement {
  // a peer's pipeline opens on its node's own page
  const link = h('a', { href: src.self ? pipelineUrl(p.id) : `${src.base}${pipelineUrl(p.id)}` }, p.id)
  if (src.self) {
    link.addEventListener('click', (e) => {
      e.preventDefault()
      history.replaceState(null, '', pipelineUrl(p.id))
      focusPipeline(p.id)
    })
  }
  return h('tr', null,
    h('td', { 'data-label': 'Pipeline' }, link, src.self ? '' : h('small', null, ` on ${src.name}`)),
    h('td', { 'data-label': 'Stages' }, h('ol', { class: 'stages' })),
    h('td', { 'data-label': 'State' }, h('span', { class: 'state' }), h('small', { class: 'err' })),
    h('td', { 'data-label': 'Created' }),
    h('td', { 'data-label': 'Ended' }),
    h('td', { 'data-label': 'Output' }, h('a', { class: 'out', href: '#', download: true })),
    h('td', { class: 'actions' },
      h('button', { type: 'button', class: 'cancel', 'aria-label': `Cancel pipeline ${p.id}`, onclick: () => { void cancel(src, src.pipelines.get(p.id) ?? p) } }, 'Cancel')))
}

function update (tr: HTMLTableRowElement, item: Item): void {
  const { src, p } = item
  const [, stagesTd, stateTd, created, ended, outTd, actions] = [...tr.children] as HTMLElement[]
  type Item = { s?: StageView }
  const items: Item[] = [...p.stages.map((s) => ({ s })), ...(p.queue ? [{}] : [])]
  syncList(stagesTd.firstElementChild!, items, (i) => i.s ? String(i.s.n) : 'farm',
    (i) => i.s ? stageItem(i.s) : queueItem(),
    (li, i) => { if (i.s) updateStage(li, i.s); else updateQueue(li, item) })
  const state = stateTd.querySelector('.state') as HTMLElement
  const status = p.cancelling && p.status === 'running' ? 'cancelling' : p.status
  setText(state, status)
  state.className = `state s-${p.status === 'running' ? 'busy' : p.status}`
  setText(stateTd.querySelector('.err')!, p.error && p.status !== 'complete' ? ` ${p.error}` : '')
  setText(created, localTime(p.ctime))
  setText(ended, p.etime ? `${localTime(p.etime)} (${duration((p.etime - p.ctime) * 1000)})` : '')
  const out = outTd.querySelector('.out') as HTMLAnchorElement
  const last = outputOf(p)
  show(out, Boolean(last))
  if (last) {
    const href = `${src.base}/api/v1/pipelines/${encodeURIComponent(p.id)}/stages/${last.n}/output`
    if (out.getAttribute('href') !== href) out.setAttribute('href', href)
    setText(out, last.out!)
  }
  show(actions.querySelector('.cancel') as HTMLElement, !FINAL.has(p.status) && !p.cancelling)
  const focused = src.self && app.focusPipeline === p.id
  tr.classList.toggle('focus', focused)
  if (focused) tr.setAttribute('aria-current', 'true')
  else tr.removeAttribute('aria-current')
}

let scrolledTo = ''
onRender(() => {
  const all: Item[] = []
  for (const src of app.sources.values()) {
    if (!src.self && !app.lan.tasks) continue
    for (const p of src.pipelines.values()) all.push({ src, p })
  }
  all.sort((a, b) => b.p.ctime - a.p.ctime || b.p.id.localeCompare(a.p.id))
  show(byId('pipelines'), all.length > 0)
  const more = byId('pipelines-more')
  if (all.length > shown) {
    more.replaceChildren(h('button', { type: 'button', onclick: () => { shown += PAGE; changed() } }, `Show ${Math.min(PAGE, all.length - shown)} more of ${all.length - shown} pipelines`))
  } else more.replaceChildren()
  const rows = byId('pipeline-rows')
  syncList(rows, all.slice(0, shown), ({ src, p }) => src.self ? p.id : `${src.id}/${p.id}`, row, update)
  const f = app.focusPipeline
  if (f && scrolledTo !== f) {
    const tr = rows.querySelector(`tr[data-key="${CSS.escape(f)}"]`)
    if (tr) {
      scrolledTo = f
      tr.scrollIntoView({ block: 'nearest' })
    }
  }
})
