import { setTimeout as sleep } from 'node:timers/promises'
import { FINAL, type TaskView } from './api.js'
import type { ClientContext } from './context.js'
import { ClientError, EXIT } from './errors.js'
import { findTask } from './lookup.js'
import { checkWritable } from './output.js'
import { createReporter } from './progress.js'
import { describe, waitFor } from './wait.js'
import { resolve } from 'node:path'

/** cancel, pause or resume a task on whichever node has it; a cancel waits (briefly) for the tool to stop. */
export async function changeTask (ctx: ClientContext, id: string, op: 'cancel' | 'pause' | 'resume'): Promise<TaskView> {
  const { api } = await findTask(ctx, id)
  let t = await api.change(id, op)
  for (let i = 0; op === 'cancel' && !FINAL.has(t.status) && i < 100; i++) {
    await sleep(100)
    t = await api.task(id)
  }
  return t
}

/**
 * Writes a task's output to `output` (default: the node's file name, here), or to stdout for `-`.
 * With `wait`, waits for the task to end first.
 */
export async function fetchOutput (ctx: ClientContext, id: string, output: string | undefined, wait: boolean): Promise<{ task: TaskView; file?: string }> {
  let { api, task } = await findTask(ctx, id)
  const reporter = createReporter()
  if (wait && !FINAL.has(task.status)) task = await waitFor(api, id, (t) => reporter.state(describe(t)))
  reporter.done()
  if (task.status !== 'complete') {
    const hint = FINAL.has(task.status) ? `see \`rrcloud log ${id}\`` : `wait for it with \`rrcloud fetch --wait ${id}\``
    throw new ClientError(`task ${id} is ${task.status}${task.error ? ` (${task.error})` : ''}; ${hint}`, EXIT.failed)
  }
  if (!task.out) throw new ClientError(`task ${id} (${task.service}) has no output file`, EXIT.failed)
  if (output === '-') {
    await api.download(id, process.stdout, (p) => reporter.bytes('download', p))
    reporter.done()
    return { task }
  }
  const file = resolve(output ?? task.out.split('/').pop()!)
  checkWritable(file)
  await api.download(id, file, (p) => reporter.bytes('download', p))
  reporter.done()
  return { task, file }
}
