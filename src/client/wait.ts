const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
import { FINAL, type NodeApi, type TaskView } from './api.js'

/**
 * Waits for a task to end. A node that knows `?wait=` answers the moment the task ends (a long
 * poll), asked in slices of `slice` seconds so that the state can be shown between them; with a node
 * that answers without waiting, polls: fast at first (short tasks end in tens of milliseconds), then
 * backing off to once a second for long ones.
 */
export async function waitFor (api: NodeApi, id: string, onUpdate?: (t: TaskView) => void, maxDelay = 1000, slice = 1): Promise<TaskView> {
  let delay = 15
  let longPoll = true
  for (;;) {
    let t: TaskView
    if (longPoll) {
      const r = await api.waitTask(id, slice)
      t = r.task
      longPoll = r.waited
    } else {
      t = await api.task(id)
    }
    onUpdate?.(t)
    if (FINAL.has(t.status)) return t
    if (longPoll) continue
    await sleep(delay)
    delay = Math.min(Math.round(delay * 1.5), maxDelay)
  }
}

/** `openscad 1361982308-837500 busy 12s Rendering Polygon Mesh` */
export function describe (t: TaskView, now = Date.now() / 1000): string {
  const age = Math.max(0, Math.round(now - t.ctime))
  return `${t.service} ${t.id} ${t.status} ${age}s${t.progress ? ` ${t.progress}` : ''}`
}
