import { z } from 'zod'
import { TaskError } from '../node/errors.js'
import { newTaskId } from '../node/task.js'
import { checkTree, MAX_FILES, SHA256, zodProblem } from '../node/tree.js'

/** Pipeline ids: a task id with a `p` before it, e.g. p1700000000-123456. */
export const PIPELINE_ID = /^p\d{1,12}-\d{6}$/
export const newPipelineId = (now = Date.now()) => `p${newTaskId(now)}`

export const MAX_STAGES = 16

export type PipelineStatus = 'running' | 'complete' | 'failed' | 'cancelled'
/** `waiting` for the stages before it, `placing` on a node, then its task's own status. */
export type StageState = 'waiting' | 'placing' | 'queued' | 'busy' | 'paused' | 'complete' | 'failed' | 'cancelled'
export const FINAL_PIPELINE: ReadonlySet<PipelineStatus> = new Set(['complete', 'failed', 'cancelled'])

/** A file of a stage, in the driving node's store (or, once placed, the stage node's). */
export interface FileRef { sha256: string; path?: string; prearg?: string; size?: number }
/** The previous stage's output, as an input of this one. */
export interface PreviousRef { from: 'previous'; path?: string; prearg?: string }
export const isPrevious = (i: FileRef | PreviousRef): i is PreviousRef => (i as PreviousRef).from === 'previous'

/**
 * Where the last stage's output (G-code) goes once the pipeline completes: a job of the driving
 * node's farm queue, for a group or one printer, in some copies; `job` once it is queued.
 */
export interface QueueHandOff { group?: string; printer?: string; copies: number; job?: string }

/** A node as the driver reached it. */
export interface StageNode { id: string; name: string; url: string }

export interface Stage {
  service: string
  inputs: Array<FileRef | PreviousRef>
  files: Array<FileRef & { path: string }>
  printer?: string
  state: StageState
  /** the node it runs on, and its task there */
  node?: StageNode
  task?: string
  percent?: number
  progress?: string
  exitCode?: number | null
  error?: string
  /** its output, once in the stage node's content store */
  out?: { sha256: string; size?: number; name: string }
  /** nodes that hold its output (its own node first; those that fetched it for the next stage) */
  holders?: StageNode[]
  /** ids of the nodes it was placed on, in order */
  tried: string[]
  started?: number
  ended?: number
}

export interface Pipeline {
  id: string
  status: PipelineStatus
  /** the client's address */
  client: string
  ctime: number
  etime?: number
  /** the stage running now (index); stages.length once all completed */
  stage: number
  stages: Stage[]
  /** the farm queue the last output goes to, when one was asked for */
  queue?: QueueHandOff
  cache?: boolean
  notifier?: string
  error?: string
  exitCode?: number | null
  /** the end of the log of the stage that failed, kept here in case its node goes */
  failedLog?: string
  /** cancel was asked for: the driver cancels the running stage and drops the rest */
  cancelling?: boolean
  /** the token the client sent, passed on to the nodes of the stages; never shown */
  token?: string
}

const digest = z.string().regex(SHA256, 'a SHA-256: 64 lower-case hex digits')
const size = z.number().int().nonnegative().optional()
const fileInput = z.object({ sha256: digest, path: z.string().optional(), prearg: z.string().max(64).optional(), size }).strict()
const previousInput = z.object({ from: z.literal('previous'), path: z.string().optional(), prearg: z.string().max(64).optional() }).strict()
const stageSchema = z.object({
  service: z.string().regex(/^[A-Za-z0-9][\w.-]{0,63}$/, 'a service name'),
  inputs: z.array(z.union([fileInput, previousInput])).min(1).max(MAX_FILES),
  files: z.array(z.object({ sha256: digest, path: z.string(), size }).strict()).max(MAX_FILES).default([]),
  printer: z.string().min(1).max(256).optional(),
}).strict()

const farmName = z.string().regex(/^[A-Za-z0-9][\w.-]{0,31}$/, 'a printer or group name')
const queueSchema = z.object({
  group: farmName.optional(),
  printer: farmName.optional(),
  copies: z.number().int().min(1).max(1000).default(1),
}).strict()

/** `POST /api/v1/pipelines`: the stages in order, each a task by digest whose main input may be the previous stage's output. */
export const pipelineSchema = z.object({
  stages: z.array(stageSchema).min(1).max(MAX_STAGES),
  queue: queueSchema.optional(),
  cache: z.boolean().optional(),
  notifier: z.string().optional(),
  format: z.string().optional(),
  token: z.string().optional(),
}).strict()
export type PipelineRequest = z.infer<typeof pipelineSchema>

/**
 * A pipeline request as the driver takes it, or a refusal ('invalid') naming what is wrong: the
 * first stage has its own inputs only; every later one takes the previous output exactly once;
 * each stage's paths make a valid task folder.
 */
export function parsePipeline (json: unknown): PipelineRequest {
  const parsed = pipelineSchema.safeParse(json)
  if (!parsed.success) throw new TaskError('invalid', zodProblem(parsed.error))
  const r = parsed.data
  r.stages.forEach((s, n) => {
    const previous = s.inputs.filter(isPrevious).length
    const at = `stage ${n + 1} (${s.service})`
    if (n === 0 && previous) throw new TaskError('invalid', `${at}: the first stage has no previous output to take`)
    if (n > 0 && previous !== 1) throw new TaskError('invalid', `${at}: takes the previous stage's output as one of its inputs ({"from": "previous"}), exactly once`)
    if (s.printer && s.files.length) throw new TaskError('invalid', `${at}: a print takes its G-code file alone, no other files`)
    try {
      checkTree([...s.inputs.flatMap((i) => i.path === undefined ? [] : [i.path]), ...s.files.map((f) => f.path)])
    } catch (e) {
      throw new TaskError('invalid', `${at}: ${(e as Error).message}`)
    }
  })
  if (r.queue) {
    const last = r.stages[r.stages.length - 1]
    if (!r.queue.group === !r.queue.printer) throw new TaskError('invalid', 'queue: say where to print: {"group": GROUP} (the first free printer of the group) or {"printer": NAME}')
    if (last.printer || last.service === 'printrun') throw new TaskError('invalid', `queue: the last stage (${last.service}) prints; its output cannot be queued`)
  }
  return r
}

/** `stage 2/3 (slic3r)`, as messages name a stage */
export const stageName = (p: Pipeline, s: Stage) => `stage ${p.stages.indexOf(s) + 1}/${p.stages.length} (${s.service})`

/** Every digest a pipeline's stages name (their own files, not the outputs passed on). */
export const digestsOf = (r: { stages: Array<{ inputs: Array<FileRef | PreviousRef>, files: FileRef[] }> }) =>
  [...new Set(r.stages.flatMap((s) => [...s.inputs.flatMap((i) => isPrevious(i) ? [] : [i.sha256]), ...s.files.map((f) => f.sha256)]))]

/** A pipeline as shown: without the token, and its notifier only when `notifier` is true. */
export function pipelineView (p: Pipeline, show: { notifier?: boolean } = {}): Record<string, unknown> {
  const { token: _token, notifier, cancelling, ...rest } = p
  return {
    ...rest,
    ...(cancelling && p.status === 'running' ? { cancelling } : {}),
    ...(show.notifier && notifier ? { notifier } : {}),
    stages: p.stages.map((s, n) => ({
      n: n + 1,
      service: s.service,
      state: s.state,
      ...(s.node ? { node: s.node.name, nodeId: s.node.id, nodeUrl: s.node.url } : {}),
      ...(s.task ? { task: s.task } : {}),
      ...(s.printer ? { printer: s.printer } : {}),
      ...(s.percent !== undefined ? { percent: s.percent } : {}),
      ...(s.progress ? { progress: s.progress } : {}),
      ...(s.exitCode !== undefined ? { exitCode: s.exitCode } : {}),
      ...(s.error ? { error: s.error } : {}),
      ...(s.out ? { out: s.out.name, outSha256: s.out.sha256, ...(s.out.size !== undefined ? { outSize: s.out.size } : {}) } : {}),
      ...(s.tried.length > 1 ? { attempts: s.tried.length } : {}),
      ...(s.started ? { started: s.started } : {}),
      ...(s.ended ? { ended: s.ended } : {}),
    })),
  }
}
