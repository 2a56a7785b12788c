import { NodeError, nodeApi, type NodeApi, type TaskView } from './api.js'
import type { ClientContext } from './context.js'
import { ClientError, EXIT } from './errors.js'

/** Finds the node that has task `id` among the candidates (a 404 means: ask the next one). */
export async function findTask (ctx: ClientContext, id: string): Promise<{ api: NodeApi; task: TaskView }> {
  if (!/^\d{1,12}-\d{6}$/.test(id)) throw new ClientError(`"${id}" is not a task id (they look like 1361982308-837500)`, EXIT.usage)
  const candidates = await ctx.source.candidates()
  let unreachable: NodeError | undefined
  for (const server of candidates) {
    const api = nodeApi(server, ctx.token)
    try {
      return { api, task: await api.task(id) }
    } catch (err) {
      if (!(err instanceof NodeError)) throw err
      if (err.status === undefined) unreachable ??= err
      else if (err.status !== 404) throw err
    }
  }
  if (unreachable && candidates.length === 1) throw unreachable
  throw new ClientError(`no task ${id} on ${candidates.map((s) => s.name).join(', ')}${unreachable ? ` (${unreachable.server.url} could not be reached)` : ''}`, EXIT.failed)
}

/** The first candidate node (for a service, or any) that answers, for listings and meta. */
export async function firstNode<T> (ctx: ClientContext, fn: (api: NodeApi) => Promise<T>, service?: string): Promise<{ api: NodeApi; value: T }> {
  const candidates = await ctx.source.candidates(service, {}, true)
  let last: unknown
  for (const server of candidates) {
    const api = nodeApi(server, ctx.token)
    try {
      return { api, value: await fn(api) }
    } catch (err) {
      if (!(err instanceof NodeError) || !err.retry) throw err
      last = err
    }
  }
  throw last
}

/**
 * Asks every node the client knows (the LAN, --s, rrcloudrc) at once; nodes that cannot be reached
 * are reported, not fatal, unless none answers.
 */
export async function everyNode<T> (ctx: ClientContext, fn: (api: NodeApi) => Promise<T>): Promise<{ answers: Array<{ api: NodeApi; value: T }>; failed: NodeError[] }> {
  const candidates = await ctx.source.candidates()
  const results = await Promise.allSettled(candidates.map(async (server) => {
    const api = nodeApi(server, ctx.token)
    return { api, value: await fn(api) }
  }))
  const answers = results.flatMap((r) => r.status === 'fulfilled' ? [r.value] : [])
  const failed = results.flatMap((r) => r.status === 'rejected' ? [r.reason] : [])
  for (const e of failed) if (!(e instanceof NodeError)) throw e
  if (!answers.length) {
    if (failed.length === 1) throw failed[0]
    throw new ClientError(`no node answered:\n${failed.map((e) => `  ${(e as Error).message}`).join('\n')}`, EXIT.node)
  }
  return { answers, failed: failed as NodeError[] }
}
