// The page's state: the nodes it knows and what it shows; sections render from it.
import { Source } from './model.js'

export const app = {
  self: undefined as unknown as Source,
  /** every node, this one first */
  sources: new Map<string, Source>(),
  lan: {
    /** the LAN's tasks are shown, not only this node's */
    tasks: false,
    /** nodes whose tasks are followed because a task was submitted there */
    tracked: new Set<string>(),
  },
  /** the task the URL names (after a submit, or opened from a link) */
  focus: undefined as { node: string, id: string } | undefined,
  /** the pipeline the URL names (after a chain was sent from the page, or opened from a link) */
  focusPipeline: undefined as string | undefined,
  /** the farm job the URL names (after it was queued from the page) */
  focusJob: undefined as { node: string, id: string } | undefined,
  /** whether this node browses the LAN (not with --no-mdns) */
  browsing: true,
}

const renderers: Array<() => void> = []
let due = false

export function onRender (r: () => void): void { renderers.push(r) }

/** renders every section soon, once however many changes come in the meantime */
export function changed (): void {
  if (due) return
  due = true
  setTimeout(() => {
    due = false
    for (const r of renderers) {
      try { r() } catch (e) { console.error(e) }
    }
  }, 30)
}

export function say (text: string): void {
  const live = document.getElementById('live')
  if (live) live.textContent = text
}
