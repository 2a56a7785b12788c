// Elements from data, text set only when it changes, and keyed lists kept in place
// (so that focus, scroll and open dialogs survive an update).
type Child = Node | string | number | null | undefined | false
type Attrs = Record<string, string | number | boolean | undefined | EventListener>

export const byId = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T

function fill (el: Element, attrs: Attrs | null | undefined, children: Child[]): void {
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (typeof v === 'function') el.addEventListener(k.slice(2), v)
    else if (v === true) el.setAttribute(k, '')
    else if (v !== false && v !== undefined) el.setAttribute(k, String(v))
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(typeof c === 'number' ? String(c) : c)
}

export function h<K extends keyof HTMLElementTagNameMap> (tag: K, attrs?: Attrs | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  fill(el, attrs, children)
  return el
}

export function svg (tag: string, attrs?: Attrs | null, ...children: Child[]): SVGElement {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag)
  fill(el, attrs, children)
  return el
}

export function setText (el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text
}

export function show (el: Element & { hidden: boolean }, on: boolean): void {
  if (el.hidden === on) el.hidden = !on
}

/**
 * Makes `parent`'s children the items' elements in order: an element made once per key
 * (`create`), brought up to date on every call (`update`); elements of keys gone are removed.
 */
export function syncList<T, E extends HTMLElement> (parent: Element, items: T[], key: (t: T) => string, create: (t: T) => E, update: (el: E, t: T) => void): void {
  const old = new Map<string, E>()
  for (const c of [...parent.children] as E[]) {
    if (c.dataset.live && c.dataset.key) old.set(c.dataset.key, c)
    else c.remove() // what the node rendered before the script ran, or a placeholder
  }
  let at: Element | null = parent.firstElementChild
  for (const item of items) {
    const k = key(item)
    let el = old.get(k)
    if (el) old.delete(k)
    else {
      el = create(item)
      el.dataset.key = k
      el.dataset.live = '1'
    }
    update(el, item)
    if (el !== at) parent.insertBefore(el, at)
    else at = at.nextElementSibling
  }
  for (const el of old.values()) el.remove()
}
