import { resolve } from 'node:path'
import { NodeError, nodeApi, type NodeApi, type PipelineView } from './api.js'
import type { ClientContext } from './context.js'
import { ClientError, EXIT, usage } from './errors.js'
import { table } from './format.js'
import { checkWritable } from './output.js'
import { createReporter } from './progress.js'
import { follow } from './pipe.js'

/** Pipeline ids: a task id with a `p` before it. */
export const PIPELINE_ID = /^p\d{1,12}-\d{6}$/

/** Finds the node that drives pipeline `id` among the nodes the client knows. */
export async function findPipeline (ctx: ClientContext, id: string): Promise<{ api: NodeApi; pipeline: PipelineView }> {
  const candidates = await ctx.source.candidates()
  let unreachable: NodeError | undefined
  for (const server of candidates) {
    const api = nodeApi(server, ctx.token)
    try {
      return { api, pipeline: await api.pipeline(id) }
    } catch (err) {
      if (!(err instanceof NodeError)) throw err
      if (err.status === undefined) unreachable ??= err
      else if (err.status !== 404 && err.status !== 405) throw err
    }
  }
  if (unreachable && candidates.length === 1) throw unreachable
  throw new ClientError(`no pipeline ${id} on ${candidates.map((s) => s.name).join(', ')}${unreachable ? ` (${unreachable.server.url} could not be reached)` : ''}`, EXIT.failed)
}

/** `rrcloud cancel PIPELINE`: cancels its running stage and drops the rest; waits (briefly) for it to end. Pipelines are not paused. */
export async function changePipeline (ctx: ClientContext, id: string, op: 'cancel' | 'pause' | 'resume'): Promise<PipelineView> {
  if (op !== 'cancel') throw usage(`a pipeline is not paused as a whole: ${op} its running stage's task (\`rrcloud info ${id}\` shows it)`)
  const { api } = await findPipeline(ctx, id)
  let v = await api.cancelPipeline(id)
  for (let i = 0; v.status === 'running' && i < 30; i++) v = await api.pipeline(id, 1)
  return v
}

/** `rrcloud info PIPELINE`: its state, then a line per stage. */
export function formatPipeline (v: PipelineView): string {
  const head = [`id: ${v.id}`, `status: ${v.status}`, `stage: ${Math.min(v.stage + 1, v.stages.length)}/${v.stages.length}`,
    ...(v.error ? [`error: ${v.error}`] : []), ...(typeof v.exitCode === 'number' ? [`exitCode: ${v.exitCode}`] : [])]
  const rows = v.stages.map((s) => [String(s.n), s.service, s.state, s.node ?? '', s.task ?? '', s.percent !== undefined ? `${Math.floor(s.percent)}%` : '',
    s.error ?? s.progress ?? (s.out ? `${s.out}${s.outSize !== undefined ? ` (${s.outSize} bytes)` : ''}` : '')])
  return head.join('\n') + '\n\n' + table(['STAGE', 'SERVICE', 'STATE', 'NODE', 'TASK', 'PERCENT', 'NOTE'], rows)
}

/** `rrcloud log PIPELINE`: every stage's log, each headed by its stage. */
export async function pipelineLog (ctx: ClientContext, id: string): Promise<string> {
  const { api } = await findPipeline(ctx, id)
  return api.pipelineLog(id)
}

/** `rrcloud fetch PIPELINE [-o FILE] [--wait]`: the output of its last stage that has one. */
export async function fetchPipeline (ctx: ClientContext, id: string, output: string | undefined, wait: boolean): Promise<{ id: string; status: string; file?: string }> {
  let { api, pipeline: v } = await findPipeline(ctx, id)
  const reporter = createReporter()
  if (wait && v.status === 'running') v = await follow(api, v, reporter, () => false)
  reporter.done()
  if (v.status !== 'complete') {
    const hint = v.status === 'running' ? `wait for it with \`rrcloud fetch --wait ${id}\`` : `see \`rrcloud log ${id}\``
    throw new ClientError(`pipeline ${id} is ${v.status}${v.error ? ` (${v.error})` : ''}; ${hint}`, EXIT.failed)
  }
  const stage = [...v.stages].reverse().find((s) => s.out)
  if (!stage) throw new ClientError(`pipeline ${id} has no output file (its last stage, ${v.stages.at(-1)!.service}, makes none)`, EXIT.failed)
  if (output === '-') {
    await api.downloadStage(id, stage.n, process.stdout, (p) => reporter.bytes('download', p))
    reporter.done()
    return { id, status: v.status }
  }
  const file = resolve(output ?? stage.out!)
  checkWritable(file)
  await api.downloadStage(id, stage.n, file, (p) => reporter.bytes('download', p))
  reporter.done()
  return { id, status: v.status, file }
}
