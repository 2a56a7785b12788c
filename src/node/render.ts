import type { Task } from './task.js'

export type Format = 'text' | 'json' | 'html'

/**
 * A task as the seed showed it: flat fields, `in` as a comma-separated list. The notifier URL,
 * which may carry a secret, only with `notifier: true`.
 */
export function taskView (t: Task, show: { notifier?: boolean } = {}): Record<string, unknown> {
  const { in: inputs, files, notifier, ...rest } = t
  const v: Record<string, unknown> = { ...rest, in: inputs.map((i) => (i.prearg ?? '') + i.path).join(',') }
  // the folder's other files by the names the tool sees them at
  if (files?.length) v.files = files.map((f) => f.name ?? f.path)
  if (show.notifier) v.notifier = notifier
  for (const k of Object.keys(v)) if (v[k] === undefined) delete v[k]
  return v
}

const scalar = (v: unknown): string =>
  Array.isArray(v)
    ? v.map((x) => x !== null && typeof x === 'object'
      ? Object.entries(x).map(([k, y]) => `${k}=${String(y)}`).join(' ')
      : String(x)).join(v.some((x) => typeof x === 'object') ? ', ' : ',')
    : v !== null && typeof v === 'object'
      ? Object.entries(v).map(([k, x]) => `${k} (${scalar(x)})`).join(', ')
      : String(v)

/** `key: value` lines, keys sorted as in the seed's replies; records separated by a blank line. */
export function toText (data: unknown): string {
  const one = (r: Record<string, unknown>) =>
    Object.keys(r).sort().filter((k) => r[k] !== undefined).map((k) => `${k}: ${scalar(r[k])}`).join('\n') + '\n'
  if (Array.isArray(data)) return data.map((r) => one(r as Record<string, unknown>)).join('\n')
  return one(data as Record<string, unknown>)
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

function table (rows: Array<Record<string, unknown>>): string {
  if (rows.length === 0) return '<p>none</p>'
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))].sort()
  // a task's id leads to its log; the node's own id (meta) to nothing
  const cell = (r: Record<string, unknown>, k: string, v: unknown) => {
    const s = v === undefined ? '' : scalar(v)
    if (k === 'out' && s) return `<a href="/${esc(s)}">${esc(s)}</a>`
    if (k === 'id' && s && 'service' in r) return `<a href="/tasks/log/${esc(s)}">${esc(s)}</a>`
    return esc(s)
  }
  return `<table><tr>${keys.map((k) => `<th>${esc(k)}</th>`).join('')}</tr>\n` +
    rows.map((r) => `<tr>${keys.map((k) => `<td>${cell(r, k, r[k])}</td>`).join('')}</tr>`).join('\n') + '</table>'
}

/** The page a browser gets: what was asked for, the node's meta and a form to submit a task. */
export function toHtml (title: string, data: unknown, services: string[] = []): string {
  const rows = (Array.isArray(data) ? data : [data]) as Array<Record<string, unknown>>
  const options = services.map((s) => `<option>${esc(s)}</option>`).join('')
  return `<!doctype html><html><head><meta charset="utf-8"><title>rrcloud: ${esc(title)}</title>
<style>body{font:14px sans-serif;margin:1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}</style>
</head><body><h1>rrcloud: ${esc(title)}</h1>
${table(rows)}
${services.length ? `<h2>New task</h2><form method="post" action="/" enctype="multipart/form-data">
<select name="service">${options}</select> <input type="file" name="fileIn0"> <input type="submit" value="Submit"></form>` : ''}
</body></html>
`
}
