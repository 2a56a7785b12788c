import type { Task } from './task.js'
import { taskView } from './render.js'
import type { PageData } from './dashboard-page.js'

/** tasks and pipelines the page lists before its script runs */
const FIRST_TASKS = 50
const FIRST_PIPELINES = 20

/** What the dashboard shows before its script runs, from meta, the runner's tasks and the pipelines this node drives (as shown). */
export function pageData (meta: Record<string, unknown>, tasks: Task[], pipelines: Array<Record<string, unknown>> = []): PageData {
  const num = (k: string) => Number(meta[k] ?? 0)
  const newest = [...tasks].sort((a, b) => b.ctime - a.ctime).slice(0, FIRST_TASKS)
  return {
    node: {
      id: String(meta.id ?? ''),
      name: String(meta.serverName ?? ''),
      version: String(meta.version ?? ''),
      services: String(meta.services ?? '').split(',').filter(Boolean),
      cpuLoad: num('cpuLoad'),
      cores: num('cores'),
      slots: num('slots'),
      free: num('free'),
      queue: num('queue'),
      tokenRequired: meta.tokenRequired === true,
    },
    printers: ((meta.printers ?? []) as PageData['printers']),
    tasks: newest.map((t) => taskView(t)),
    pipelines: [...pipelines].sort((a, b) => Number(b.ctime) - Number(a.ctime)).slice(0, FIRST_PIPELINES),
    total: tasks.length,
  }
}
