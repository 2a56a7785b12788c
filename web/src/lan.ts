// LAN: every node with its host, services, load, free slots, queue and version.
import { app, onRender } from './app.js'
import { byId, h, setText, show, syncList } from './dom.js'
import type { Source } from './model.js'

function row (s: Source): HTMLTableRowElement {
  const name = s.self ? h('span', null, s.name) : h('a', { href: `${s.base}/ui/` }, s.name)
  return h('tr', null,
    h('th', { scope: 'row', 'data-label': 'Node' }, name, ' ', h('span', { class: 'lock', title: 'changes need a token' }, 'token'), ' ', h('small', { class: 'link' })),
    h('td', { 'data-label': 'Host' }), h('td', { 'data-label': 'Services' }), h('td', { 'data-label': 'Load' }),
    h('td', { 'data-label': 'Free / slots' }), h('td', { 'data-label': 'Queue' }), h('td', { 'data-label': 'Version' }))
}

function update (tr: HTMLTableRowElement, s: Source): void {
  const i = s.info
  const [th, host, services, load, free, queue, version] = [...tr.children] as HTMLElement[]
  show(th.querySelector('.lock') as HTMLElement, i.tokenRequired)
  setText(th.querySelector('.link')!, s.self ? '(this node)' : s.link === 'down' ? '(not reachable)' : '')
  setText(host, s.self ? location.host : `${i.host} (${s.base.replace(/^http:\/\//, '')})`)
  setText(services, i.services.join(', '))
  setText(load, i.load === undefined ? '' : `${Math.round(i.load * 100)}%`)
  setText(free, i.slots === undefined ? '' : `${i.free} / ${i.slots}`)
  setText(queue, i.queue === undefined ? '' : String(i.queue))
  setText(version, i.version.replace(/^rrcloud /, ''))
}

onRender(() => {
  const all = [...app.sources.values()].sort((a, b) => Number(b.self) - Number(a.self) || a.name.localeCompare(b.name))
  syncList(byId('lan-rows'), all, (s) => s.id, row, update)
  setText(byId('lan-note'), app.browsing
    ? `${all.length} node${all.length === 1 ? '' : 's'}, as this node sees them over mDNS.`
    : 'This node does not browse the LAN (it runs with --no-mdns): only this node is shown.')
})
