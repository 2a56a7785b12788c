import debug from 'debug'
import { NodeError, nodeApi, type NodeApi, type OnProgress, type TaskView } from './api.js'
import type { Input } from './args.js'
import { ClientError, EXIT } from './errors.js'
import { StreamingForm } from './form.js'
import type { Server } from './servers.js'

const log = debug('rrcloud:submit')

export interface TaskRequest {
  service: string
  inputs: Input[]
  notifier?: string
}

/** The seed's form: service, fileIn0..n (streamed from disk, never read whole), prearg0..n, notifier. */
function formOf (r: TaskRequest): StreamingForm {
  const form = new StreamingForm()
  form.append('service', r.service)
  for (const [i, inp] of r.inputs.entries()) {
    form.appendFile(`fileIn${i}`, inp.path)
    if (inp.prearg) form.append(`prearg${i}`, inp.prearg)
  }
  if (r.notifier) form.append('notifier', r.notifier)
  return form
}

/** A node that does not offer the service says so with a 400 and its list: another may offer it. */
const notOffered = (e: NodeError) => e.status === 400 && /unknown service/.test(e.message)

/**
 * Sends a task to the first candidate that takes it, moving on when one is unreachable, failing
 * (5xx, full) or does not offer the service.
 */
export async function submit (candidates: Server[], token: string | undefined, r: TaskRequest, onProgress?: OnProgress): Promise<{ api: NodeApi; task: TaskView }> {
  const errors: NodeError[] = []
  for (const server of candidates) {
    const api = nodeApi(server, token)
    try {
      const task = await api.submit(formOf(r), onProgress)
      log('task %s on %s', task.id, server.url)
      return { api, task }
    } catch (err) {
      if (!(err instanceof NodeError) || !(err.retry || notOffered(err))) throw err
      log('%s refused: %s', server.url, err.message)
      errors.push(err)
    }
  }
  if (errors.length === 1) throw errors[0]
  const exit = errors.every((e) => e.status === undefined || e.status >= 500) ? EXIT.node : EXIT.usage
  throw new ClientError(`no node took the ${r.service} task:\n${errors.map((e) => `  ${e.message}`).join('\n')}`, exit)
}
