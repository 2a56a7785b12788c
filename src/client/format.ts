import type { TaskView } from './api.js'

const scalar = (v: unknown): string =>
  Array.isArray(v)
    ? v.join(',')
    : v !== null && typeof v === 'object'
      ? Object.entries(v).map(([k, x]) => `${k} (${scalar(x)})`).join(', ')
      : String(v)

/** `key: value` lines with sorted keys, as the seed printed a task or the node's meta. */
export function formatRecord (r: object): string {
  const o = r as Record<string, unknown>
  const empty = (v: unknown) => v === undefined || v === null || (typeof v === 'object' && Object.keys(v as object).length === 0)
  return Object.keys(o).sort().filter((k) => !empty(o[k])).map((k) => `${k}: ${scalar(o[k])}`).join('\n') + '\n'
}

export const formatTask = (t: TaskView) => formatRecord(t)

/** Columns padded to their widest cell; the last column is not padded. */
export function table (head: string[], rows: string[][]): string {
  const all = [head, ...rows]
  const widths = head.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)))
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd()).join('\n') + '\n'
}

const time = (sec: number) => new Date(sec * 1000).toISOString().replace('T', ' ').slice(0, 19)

export function formatTaskList (tasks: TaskView[]): string {
  if (tasks.length === 0) return 'no tasks\n'
  return table(['ID', 'SERVICE', 'STATUS', 'CREATED', 'TOOK', 'SERVER', 'NOTE'], tasks.map((t) => [
    t.id,
    t.service,
    t.status,
    time(t.ctime),
    t.etime ? `${(t.etime - t.ctime).toFixed(1)}s` : '',
    t.server,
    t.error ?? t.progress ?? '',
  ]))
}
