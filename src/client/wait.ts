import { setTimeout as sleep } from 'node:timers/promises'
import { FINAL, type NodeApi, type TaskView } from './api.js'

/**
 * Polls a task until it ends. Starts fast (short tasks finish in tens of milliseconds) and backs
 * off to once a second for long ones.
 */
export async function waitFor (api: NodeApi, id: string, onUpdate?: (t: TaskView) => void, maxDelay = 1000): Promise<TaskView> {
  let delay = 15
  for (;;) {
    const t = await api.task(id)
    onUpdate?.(t)
    if (FINAL.has(t.status)) return t
    await sleep(delay)
    delay = Math.min(Math.round(delay * 1.5), maxDelay)
  }
}

/** `openscad 1361982308-837500 busy 12s Rendering Polygon Mesh` */
export function describe (t: TaskView, now = Date.now() / 1000): string {
  const age = Math.max(0, Math.round(now - t.ctime))
  return `${t.service} ${t.id} ${t.status} ${age}s${t.progress ? ` ${t.progress}` : ''}`
}
