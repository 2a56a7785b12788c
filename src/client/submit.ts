import debug from 'debug'
import { statSync } from 'node:fs'
import { relative } from 'node:path'
import { NodeError, nodeApi, type NodeApi, type OnProgress, type TaskView } from './api.js'
import type { Input } from './args.js'
import { ClientError, EXIT } from './errors.js'
import { StreamingForm } from './form.js'
import type { Server } from './servers.js'
import { avoid } from './avoid.js'

const log = debug('rrcloud:submit')

export interface TaskRequest {
  service: string
  inputs: Input[]
  notifier?: string
  /** a printer of the node, by name or port path (printer services) */
  printer?: string
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
  if (r.printer) form.append('printer', r.printer)
  return form
}

const size = (path: string) => {
  const n = statSync(path).size
  return n < 1024 ? `${n} bytes` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`
}

/** A node that does not offer the service says so with a 400 and its list: another may offer it. */
const notOffered = (e: NodeError) => e.status === 400 && /unknown service/.test(e.message)
/** A node that wants a token (401) or does not let us in (403) refuses; the next may not. */
const refused = (e: NodeError) => e.status === 401 || e.status === 403

/**
 * Sends a task to the first candidate that takes it, moving on when one is unreachable, failing
 * (5xx, full), refusing (401, 403) or does not offer the service. A node that failed is avoided
 * for a while by later choices of this process (src/client/avoid.ts).
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
      // the node knows the form's field names; the user knows the files by theirs
      if (err instanceof NodeError && err.status === 413) err.message += ` (inputs: ${r.inputs.map((i) => `${relative(process.cwd(), i.path) || i.path}, ${size(i.path)}`).join('; ')})`
      if (!(err instanceof NodeError) || !(err.retry || notOffered(err) || (refused(err) && candidates.length > 1))) throw err
      log('%s refused: %s', server.url, err.message)
      if (err.retry) avoid(server.url)
      errors.push(err)
    }
  }
  if (errors.length === 1) throw errors[0]
  const exit = errors.every((e) => e.status === undefined || e.status >= 500) ? EXIT.node : EXIT.usage
  throw new ClientError(`no node took the ${r.service} task:\n${errors.map((e) => `  ${e.message}`).join('\n')}`, exit)
}
