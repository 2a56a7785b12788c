import { debugLog } from './log.js'
import { statSync } from 'node:fs'
import { relative } from 'node:path'
import { NodeError, nodeApi, type Holding, type NodeApi, type OnProgress, type TaskView } from './api.js'
import type { Input } from './args.js'
import { ClientError, EXIT } from './errors.js'
import { StreamingForm } from './form.js'
import type { Server } from './servers.js'
import { avoid } from './avoid.js'
import { bytesOf, digestsOf, isSmall, lacking, mapLimit, treeBody, type FileTree, type TaskTree } from './tree.js'
import { preferData } from '../scheduler/data.js'

const log = debugLog('rrcloud:submit')

export interface TaskRequest {
  service: string
  inputs: Input[]
  notifier?: string
  /** a printer of the node, by name or port path (printer services) */
  printer?: string
  /** the inputs and the other files the tool reads, hashed when needed (without: the inputs alone, as the seed sent them) */
  tree?: FileTree
  /** false: run the tool even when the node holds the result */
  cache?: boolean
}

/**
 * The seed's form: service, fileIn0..n (streamed from disk, never read whole), prearg0..n, notifier;
 * with a tree, each input's place in it (pathN) and the other files as `file` parts named by their
 * place.
 */
function formOf (r: TaskRequest): StreamingForm {
  const form = new StreamingForm()
  form.append('service', r.service)
  if (r.cache === false) form.append('cache', 'no')
  if (r.notifier) form.append('notifier', r.notifier)
  if (r.printer) form.append('printer', r.printer)
  // each input under its own name, as the JSON form and a lookup of the task name it
  const tree = r.tree
  for (const [i, inp] of r.inputs.entries()) {
    if (inp.prearg) form.append(`prearg${i}`, inp.prearg)
    if (tree) form.append(`path${i}`, tree.inputs[i].rel)
  }
  for (const [i, inp] of r.inputs.entries()) form.appendFile(`fileIn${i}`, inp.path)
  for (const f of tree?.files ?? []) form.appendFile('file', f.path, f.rel, f.size)
  return form
}

/** Progress over several uploads at once, as one transfer. */
function overall (total: number, onProgress?: OnProgress) {
  let done = 0
  return {
    part: () => onProgress?.({ transferred: done, total, percent: total ? done / total : 1 }),
    next: (bytes: number) => { done += bytes },
  }
}

/**
 * A task with many or large files: the node is asked which it lacks (or the lookup already said),
 * only those are uploaded into its store, then the task names them all by digest. A file the node
 * let go in between (409 with `missing`) is sent once more.
 */
async function placeTree (api: NodeApi, r: TaskRequest & { tree: TaskTree }, held: Holding | undefined, onProgress?: OnProgress): Promise<TaskView> {
  const body = treeBody(r.tree, r)
  let missing = held?.missing ?? await api.missing([...r.tree.inputs, ...r.tree.files].map((f) => f.sha256))
  for (let attempt = 0; ; attempt++) {
    const files = lacking(r.tree, missing)
    const progress = overall(files.reduce((n, f) => n + f.size, 0), onProgress)
    // a few at a time: many small files are not a round trip each in a row
    await mapLimit(files, 4, async (f) => {
      let last = 0
      await api.putBlob(f.sha256, { path: f.path, name: f.rel, size: f.size, type: 'application/octet-stream' }, (p) => { progress.next(p.transferred - last); last = p.transferred; progress.part() })
    })
    try {
      return await api.submitTree(body)
    } catch (err) {
      const again = err instanceof NodeError && err.status === 409 && Array.isArray(err.details?.missing)
      if (!again || attempt > 0) throw err
      missing = err.details!.missing as string[]
      log('%s let go of %d file(s); sending them again', api.server.url, missing.length)
    }
  }
}

/** A node that does not have the store's API (an older one): 404 or 405 on it. */
const noStore = (e: unknown) => e instanceof NodeError && (e.status === 404 || e.status === 405)

/**
 * With several candidates, each is asked (at once, briefly) whether it holds the task's result or
 * its files; the order then prefers a hit, then the data, then load (src/scheduler/data.ts).
 */
async function byData (candidates: Server[], token: string | undefined, r: TaskRequest & { tree: TaskTree }): Promise<{ order: Server[]; held: Map<Server, Holding> }> {
  const held = new Map<Server, Holding>()
  if (candidates.length < 2) return { order: candidates, held }
  const asked = candidates.slice(0, 8)
  const body = treeBody(r.tree, r)
  const answers = await Promise.all(asked.map(async (s) => {
    try {
      const h = await nodeApi(s, token).lookup(body, 1500)
      held.set(s, h)
      return { hit: h.hit && r.cache !== false, missingBytes: bytesOf(r.tree, h.missing) }
    } catch (err) {
      log('%s: no lookup: %s', s.url, (err as Error).message)
      return undefined
    }
  }))
  const order = preferData(asked, answers, r.tree.bytes)
  log('by data: %s', order.map((s) => s.url).join(' '))
  return { order: [...order, ...candidates.slice(asked.length)], held }
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
  // a small tree goes as one form; asking around is still worth it for a result held elsewhere
  const store = r.tree !== undefined && !isSmall(r.tree)
  const ask = r.tree !== undefined && candidates.length > 1 && (store || r.cache !== false)
  // the files are hashed only for the store or a lookup
  const tree = store || ask ? await digestsOf(r.tree!) : undefined
  const { order, held } = ask ? await byData(candidates, token, { ...r, tree: tree! }) : { order: candidates, held: new Map<Server, Holding>() }
  for (const server of order) {
    const api = nodeApi(server, token)
    try {
      let task: TaskView | undefined
      if (store) {
        try {
          task = await placeTree(api, { ...r, tree: tree! }, held.get(server), onProgress)
        } catch (err) {
          if (!noStore(err)) throw err
          log('%s has no store; sending the form', server.url)
        }
      }
      task ??= await api.submit(formOf(r), onProgress)
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
