import { EventEmitter } from 'node:events'
import { basename, extname } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { IncomingMessage } from 'node:http'
import type { BlobStore } from '../node/blobs.js'
import { StoreUnwritable, TaskError } from '../node/errors.js'
import { peerApi, PeerRefused, type PeerTask } from './peer-api.js'
import type { PeerView } from './peers.js'
import { createPipelineStore } from './store.js'
import { createPlacer, StageFailure } from './place.js'
import {
  digestsOf, FINAL_PIPELINE, isPrevious, newPipelineId, parsePipeline, PIPELINE_ID, stageName,
  type FileRef, type Pipeline, type PipelineStatus, type QueueHandOff, type Stage, type StageNode,
} from './pipeline.js'

/** The farm queue of the driving node, as pipelines hand their last output to it. */
export interface PipelineQueue {
  /** throws (TaskError 'invalid') when no printer of the group, or no such printer, is known */
  check (to: QueueHandOff): void
  /** brings the output (from a node that holds it) into the queue as a job; its id */
  add (to: QueueHandOff, out: { sha256: string, name: string, holders: StageNode[] }, ctx: { client: string, token?: string, signal: AbortSignal }): Promise<string>
}

export interface PipelinesConfig {
  dataDir: string
  /** hours ended pipelines are kept */
  retentionHours: number
  /** the node's own token, used with the nodes of the stages when the client sent none */
  token?: string
  /** ms a stage's node may not answer before it counts as gone (default 5 s) */
  goneMs?: number
  /** ms spent looking for a node that takes a stage before the pipeline fails (default 30 s) */
  placeMs?: number
}

export interface PipelinesDeps {
  /** the nodes stages may go to */
  view: PeerView
  /** this node: its id and name, its URL from here, its port (other nodes pull its files from it) */
  self: () => StageNode & { port: number }
  /** the content store of this node, which holds the files the client sent */
  blobs: BlobStore
  log: (line: string) => void
  /** called once when a pipeline ends, with the notifier URL already expanded */
  notify: (url: string) => void
  /** why a notifier URL is refused at once (its host is a refused address), if it is */
  notifierRefusal?: (url: string) => string | undefined
  /** the farm queue, for pipelines whose last output is queued (none: they are refused) */
  queue?: PipelineQueue
}

/** The pipelines this node drives (src/node/pipelines.ts is their HTTP edge). */
export interface Pipelines {
  /** checks and stores a pipeline (its files must be in this node's store), then drives it */
  create (json: unknown, client: string, token?: string): Pipeline
  get (id: string): Pipeline
  list (): Pipeline[]
  /** cancels the running stage's task and drops the stages after it */
  cancel (id: string): Pipeline
  /** every stage's log, each headed by its stage */
  log (id: string): Promise<string>
  /** a stage's output (n from 1): a stream from a node that holds it */
  output (id: string, n: number): Promise<{ stream: IncomingMessage, name: string, size?: number }>
  /** 'pipeline' (Pipeline) on every change, once written */
  events: EventEmitter
  /** drives the pipelines that were running when the node stopped (once it listens) */
  start (): void
  close (): Promise<void>
}

/** The reasons a node gives a task that it did not end itself: it stopped (or died) meanwhile. */
const NODE_GONE = /node stopped while the task was running/
const PRINT_SERVICE = (s: Stage) => Boolean(s.printer) || s.service === 'printrun'

/** The stage's node stopped answering, or lost the task. */
class NodeGone extends Error {}

export function createPipelines (config: PipelinesConfig, deps: PipelinesDeps): Pipelines {
  const { log, blobs } = deps
  const store = createPipelineStore({ dataDir: config.dataDir })
  const events = new EventEmitter()
  events.setMaxListeners(0)
  const goneMs = config.goneMs ?? 5000
  /** pipelines being driven, by id */
  const running = new Map<string, { p: Pipeline, ctl: AbortController, done: Promise<void> }>()
  let closing = false
  let unwritable = false

  const tokenOf = (p: Pipeline) => p.token ?? config.token
  const api = (p: Pipeline, n: StageNode) => peerApi(n.url, tokenOf(p))
  const at = stageName

  function save (p: Pipeline) {
    try {
      store.save(p)
      if (unwritable) log('pipelines: records are written again')
      unwritable = false
    } catch (e) {
      if (!unwritable) log(`pipelines: cannot write pipeline records: ${(e as Error).message}; the driver keeps going and writes at the next change`)
      unwritable = true
    }
    events.emit('pipeline', p)
  }

  function end (p: Pipeline, status: PipelineStatus, patch: Partial<Pipeline> = {}) {
    Object.assign(p, patch, { status, etime: Date.now() / 1000 })
    for (const s of p.stages) if (s.state === 'waiting' || s.state === 'placing') s.state = 'cancelled'
    delete p.cancelling
    save(p)
    log(`pipeline ${p.id} ${status}${p.error ? `: ${p.error}` : ''}`)
    if (p.notifier) deps.notify(p.notifier.replaceAll('$id', p.id).replaceAll('$myip', p.client))
  }

  /** Takes a task's state into its stage; true when something changed. */
  function update (p: Pipeline, s: Stage, t: PeerTask): void {
    const next = { state: t.status, percent: t.percent, progress: t.progress, exitCode: t.exitCode, error: t.error }
    const changed = (Object.keys(next) as Array<keyof typeof next>).some((k) => s[k] !== next[k])
    if (!changed) return
    Object.assign(s, next)
    for (const k of Object.keys(next) as Array<keyof typeof next>) if (s[k] === undefined) delete s[k]
    if (t.status === 'busy' && !s.started) s.started = Date.now() / 1000
    if (['complete', 'failed', 'cancelled'].includes(t.status)) s.ended = Date.now() / 1000
    save(p)
  }

  /**
   * The task of a stage as its node sees it: long polls in slices of a second (its state and
   * percent are taken between them) until it ends; NodeGone when the node stops answering.
   */
  async function follow (p: Pipeline, s: Stage, signal: AbortSignal, waitSec = 1): Promise<PeerTask> {
    const node = api(p, s.node!)
    let failing: number | undefined
    for (;;) {
      signal.throwIfAborted()
      try {
        const t = await node.task(s.task!, waitSec, signal)
        failing = undefined
        update(p, s, t)
        if (['complete', 'failed', 'cancelled'].includes(t.status) || waitSec === 0) return t
      } catch (e) {
        if (signal.aborted) throw e
        if (e instanceof PeerRefused && e.status === 404) throw new NodeGone(`${s.node!.name} no longer has task ${s.task}`)
        failing ??= Date.now()
        if (Date.now() - failing > goneMs) throw new NodeGone(`${s.node!.name} stopped answering (${(e as Error).message})`)
        await sleep(500, undefined, { signal })
      }
    }
  }

  /** A completed stage's output, once its node has it in its store under a digest. */
  async function collect (p: Pipeline, s: Stage, t: PeerTask, signal: AbortSignal) {
    const next = p.stages[p.stages.indexOf(s) + 1]
    if (!t.out) {
      if (next) throw new StageFailure(`${at(p, s)} has no output to pass on to ${next.service}`)
      return
    }
    // the node hashes an output into its store just after the task completes
    const until = Date.now() + 60_000
    for (let delay = 10; !t.outSha256 && Date.now() < until; delay = Math.min(delay * 2, 200)) {
      await sleep(delay, undefined, { signal })
      t = await follow(p, s, signal, 0)
    }
    if (!t.outSha256) {
      if (next) throw new StageFailure(`the output of ${at(p, s)} did not enter ${s.node!.name}'s content store (is its --cache-size too small?)`)
      return
    }
    s.out = { sha256: t.outSha256, ...(t.outSize !== undefined ? { size: t.outSize } : {}), name: basename(t.out ?? `${s.task}`) }
    s.holders = [s.node!]
    save(p)
  }

  const { place } = createPlacer({ placeMs: config.placeMs ?? 30_000 }, { view: deps.view, self: deps.self, blobs, log, save, tokenOf })

  /** The end of a failed stage's log, kept with the pipeline. */
  async function keepLog (p: Pipeline, s: Stage) {
    if (!s.task || !s.node) return
    try {
      const text = await api(p, s.node).log(s.task)
      p.failedLog = text.length > 65536 ? text.slice(-65536) : text
    } catch {}
  }

  /** Cancels the running stage's task (a print makes its printer safe first) and ends the pipeline cancelled. */
  async function cancelNow (p: Pipeline) {
    const s = p.stages[p.stage]
    if (s?.task && s.node && !['complete', 'failed', 'cancelled'].includes(s.state)) {
      const node = api(p, s.node)
      try {
        update(p, s, await node.cancel(s.task))
      } catch (e) {
        log(`pipeline ${p.id}: cancelling task ${s.task} on ${s.node.name}: ${(e as Error).message}`)
      }
      const until = Date.now() + 20_000
      while (!['complete', 'failed', 'cancelled'].includes(s.state) && Date.now() < until) {
        try {
          update(p, s, await node.task(s.task, 1))
        } catch {
          await sleep(500)
        }
      }
    }
    if (s && !['complete', 'failed', 'cancelled'].includes(s.state)) s.state = 'cancelled'
    end(p, 'cancelled', { error: 'cancelled on request' })
  }

  async function run (p: Pipeline, signal: AbortSignal) {
    while (p.stage < p.stages.length) {
      if (p.cancelling) return cancelNow(p)
      const s = p.stages[p.stage]
      try {
        if (!s.task) await place(p, s, signal)
        const t = await follow(p, s, signal)
        if (t.status === 'complete') {
          await collect(p, s, t, signal)
          p.stage++
          save(p)
          continue
        }
        if (NODE_GONE.test(t.error ?? '')) throw new NodeGone(`${s.node!.name} stopped while it ran task ${s.task}`)
        if (t.status === 'cancelled') return end(p, 'cancelled', { error: `${at(p, s)}: task ${s.task} on ${s.node!.name} was cancelled` })
        await keepLog(p, s)
        return end(p, 'failed', { error: `${at(p, s)} failed on ${s.node!.name}${t.error ? `: ${t.error}` : ''}`, exitCode: t.exitCode })
      } catch (e) {
        if (signal.aborted) {
          if (signal.reason === 'cancel') return cancelNow(p)
          return
        }
        if (e instanceof NodeGone) {
          // once elsewhere; never a print (its printer is where that node is)
          if (!PRINT_SERVICE(s) && s.tried.length < 2) {
            log(`pipeline ${p.id} ${at(p, s)}: ${e.message}; running it again elsewhere`)
            s.error = e.message
            delete s.task
            save(p)
            continue
          }
          s.state = 'failed'
          s.error = e.message
          return end(p, 'failed', { error: `${at(p, s)}: ${e.message}${PRINT_SERVICE(s) ? '; a print is not sent again' : '; it already ran again once'}` })
        }
        if (!(e instanceof StageFailure)) log(`pipeline ${p.id} ${at(p, s)}: ${(e as Error).stack ?? e}`)
        s.state = 'failed'
        s.error = (e as Error).message
        return end(p, 'failed', { error: (e as Error).message })
      }
    }
    if (p.cancelling) return cancelNow(p)
    if (p.queue && !p.queue.job) {
      const last = p.stages[p.stages.length - 1]
      try {
        if (!last.out || !deps.queue) throw new Error(`${at(p, last)} left no output in a content store`)
        // the job is named after the model (part.scad: part.gcode), not the task that sliced it
        const model = p.stages[0].inputs.find((i): i is FileRef => !isPrevious(i) && !i.prearg && Boolean(i.path))
        const name = model?.path ? basename(model.path, extname(model.path)) + extname(last.out.name) : last.out.name
        p.queue.job = await deps.queue.add(p.queue, { sha256: last.out.sha256, name, holders: last.holders ?? [] }, { client: p.client, token: tokenOf(p), signal })
        log(`pipeline ${p.id}: its G-code is job ${p.queue.job} of the farm queue`)
      } catch (e) {
        if (signal.aborted) return signal.reason === 'cancel' ? cancelNow(p) : undefined
        return end(p, 'failed', { error: `the output of ${at(p, last)} could not be queued for ${p.queue.group !== undefined ? `group ${p.queue.group}` : `printer ${p.queue.printer}`}: ${(e as Error).message}` })
      }
    }
    end(p, 'complete')
  }

  function drive (p: Pipeline) {
    const ctl = new AbortController()
    const done = run(p, ctl.signal)
      .catch((e) => log(`pipeline ${p.id}: ${(e as Error).stack ?? e}`))
      .finally(() => running.delete(p.id))
    running.set(p.id, { p, ctl, done })
  }

  const current = (id: string): Pipeline => {
    if (!PIPELINE_ID.test(id)) throw new TaskError('unknown', `no pipeline ${id}`)
    const p = running.get(id)?.p ?? store.get(id)
    if (!p) throw new TaskError('unknown', `no pipeline ${id}`)
    return p
  }

  const sweepEvery = Math.max(1000, Math.min(config.retentionHours * 3600e3 / 4, 600e3))
  const sweeper = setInterval(() => {
    try {
      const n = store.sweep(Date.now() / 1000 - config.retentionHours * 3600)
      if (n) log(`retention: removed ${n} pipeline(s) older than ${config.retentionHours} h`)
    } catch {}
  }, sweepEvery)
  sweeper.unref()

  return {
    create (json, client, token) {
      if (closing) throw new TaskError('full', 'the node is stopping')
      const r = parsePipeline(json)
      if (r.notifier !== undefined && !/^https?:\/\/\S+$/i.test(r.notifier)) throw new TaskError('invalid', 'notifier must be an http:// or https:// URL')
      const refused = r.notifier && deps.notifierRefusal?.(r.notifier)
      if (refused) throw new TaskError('invalid', `notifier refused: ${refused}`)
      if (r.queue) {
        if (!deps.queue) throw new TaskError('invalid', 'queue: this node keeps no farm queue')
        deps.queue.check(r.queue)
      }
      const missing = blobs.missing(digestsOf(r))
      if (missing.length) {
        throw new TaskError('conflict', `${missing.length} file(s) of this pipeline are not on this node: upload them (PUT /api/v1/blobs/SHA256) and send it again`, { missing })
      }
      let id = newPipelineId()
      while (running.has(id) || store.get(id)) id = newPipelineId()
      const p: Pipeline = {
        id, status: 'running', client, ctime: Date.now() / 1000, stage: 0,
        stages: r.stages.map((s) => ({ service: s.service, inputs: s.inputs, files: s.files, ...(s.printer ? { printer: s.printer } : {}), state: 'waiting', tried: [] })),
        ...(r.queue ? { queue: { ...r.queue } } : {}),
        ...(r.cache === false ? { cache: false } : {}),
        ...(r.notifier ? { notifier: r.notifier } : {}),
        ...(token ? { token } : {}),
      }
      try {
        store.save(p)
      } catch (e) {
        throw new StoreUnwritable(e as Error)
      }
      events.emit('pipeline', p)
      log(`pipeline ${p.id} from ${client}: ${p.stages.map((s) => s.service).join(' -> ')}`)
      drive(p)
      return p
    },
    get: current,
    list: () => store.list().map((p) => running.get(p.id)?.p ?? p),
    cancel (id) {
      const p = current(id)
      if (FINAL_PIPELINE.has(p.status)) throw new TaskError('conflict', `pipeline ${id} is already ${p.status}`)
      if (!p.cancelling) {
        p.cancelling = true
        save(p)
        running.get(id)?.ctl.abort('cancel')
      }
      return p
    },
    async log (id) {
      const p = current(id)
      const parts = await Promise.all(p.stages.map(async (s, n) => {
        const head = `== stage ${n + 1}/${p.stages.length}: ${s.service}${s.node ? ` on ${s.node.name}` : ''}${s.task ? `, task ${s.task}` : ''} (${s.state}) ==\n`
        if (!s.task || !s.node) return head
        try {
          const text = await api(p, s.node).log(s.task)
          return head + text + (text && !text.endsWith('\n') ? '\n' : '')
        } catch (e) {
          return head + (s.state === 'failed' && p.failedLog ? p.failedLog : `(the log is not available: ${(e as Error).message})\n`)
        }
      }))
      return parts.join('')
    },
    async output (id, n) {
      const p = current(id)
      const s = p.stages[n - 1]
      if (!s) throw new TaskError('unknown', `pipeline ${id} has no stage ${n}`)
      if (s.state !== 'complete' || !s.task || !s.node) throw new TaskError('conflict', `stage ${n} (${s.service}) of pipeline ${id} is ${s.state}; its output is there once it is complete`)
      const tries: Array<() => Promise<IncomingMessage>> = [
        ...(s.out ? (s.holders ?? []).map((h) => () => api(p, h).blob(s.out!.sha256)) : []),
        () => api(p, s.node!).output(s.task!),
      ]
      let last: Error | undefined
      for (const open of tries) {
        try {
          const stream = await open()
          if (stream.statusCode === 200) {
            const size = Number(stream.headers['content-length'])
            return { stream, name: s.out?.name ?? `${s.task}`, ...(Number.isFinite(size) ? { size } : {}) }
          }
          stream.resume()
          last = new Error(`answered ${stream.statusCode}`)
        } catch (e) {
          last = e as Error
        }
      }
      throw new TaskError('conflict', `the output of stage ${n} (${s.service}) is on no node that answers now (${last?.message})`)
    },
    events,
    start () {
      for (const p of store.active()) {
        if (running.has(p.id)) continue
        log(`pipeline ${p.id}: resuming at stage ${p.stage + 1}/${p.stages.length}`)
        drive(p)
      }
    },
    async close () {
      if (closing) return
      closing = true
      clearInterval(sweeper)
      const all = [...running.values()]
      for (const r of all) r.ctl.abort('close')
      await Promise.all(all.map((r) => r.done))
      store.close()
    },
  }
}
