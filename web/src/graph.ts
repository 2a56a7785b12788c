// A small inline SVG of the temperatures of the last minutes: each heater's reading as a line,
// its target dashed.
import { svg } from './dom.js'
import { heaterName } from './format.js'
import type { Heaters } from './model.js'

const W = 240
const H = 60

export function tempGraph (history: Array<[number, Heaters]>, maxSpanMs = 10 * 60_000): SVGElement {
  const now = Date.now()
  // the minutes there are readings for, at least one, at most maxSpanMs
  const spanMs = Math.min(maxSpanMs, Math.max(60_000, now - (history[0]?.[0] ?? now)))
  const keys = [...new Set(history.flatMap(([, h]) => Object.keys(h)))]
  let max = 50
  for (const [, h] of history) for (const v of Object.values(h)) max = Math.max(max, v.actual, v.target)
  max = Math.ceil(max * 1.1 / 10) * 10
  const x = (t: number) => Math.max(0, W - (now - t) / spanMs * W).toFixed(1)
  const y = (v: number) => (H - v / max * H).toFixed(1)
  const last = history[history.length - 1]?.[1] ?? {}
  const label = keys.length
    ? `Temperatures of the last ${Math.round(spanMs / 60_000)} minute${spanMs < 90_000 ? '' : 's'}: ` + keys.map((k) => `${heaterName(k)} ${last[k]?.actual.toFixed(1) ?? '?'} of ${last[k]?.target ?? '?'} °C`).join(', ')
    : 'No temperatures yet'
  const g = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'graph', role: 'img', 'aria-label': label, preserveAspectRatio: 'none' }, svg('title', null, label))
  g.append(svg('line', { x1: 0, x2: W, y1: H - 0.5, y2: H - 0.5, class: 'axis' }))
  for (const k of keys) {
    const pts = history.filter(([, h]) => h[k])
    const kind = k[0] === 'T' ? 'hot' : k[0] === 'B' ? 'bed' : 'other'
    if (pts.length === 1) pts.push([now, pts[0][1]])
    g.append(svg('polyline', { points: pts.map(([t, h]) => `${x(t)},${y(h[k].target)}`).join(' '), class: `target ${kind}` }))
    g.append(svg('polyline', { points: pts.map(([t, h]) => `${x(t)},${y(h[k].actual)}`).join(' '), class: `actual ${kind}` }))
  }
  return g
}
