import { EventEmitter } from 'node:events'
import { basename } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { IncomingMessage } from 'node:http'
import { rank, type PeerInfo } from '../scheduler/rank.js'
import { preferData } from '../scheduler/data.js'
import type { BlobStore } from '../node/blobs.js'
import { StoreUnwritable, TaskError } from '../node/errors.js'
import { plainIp } from '../node/access.js'
import { peerApi, PeerRefused, type PeerTask } from './peer-api.js'
import type { PeerView } from './peers.js'
import { createPipelineStore } from './store.js'
import {
  digestsOf, FINAL_PIPELINE, isPrevious, newPipelineId, parsePipeline, PIPELINE_ID,
  type Pipeline, type PipelineStatus, type Stage, type StageNode,
} from './pipeline.js'

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

/** A stage that cannot go on: the pipeline fails with this message. */
class StageFailure extends Error {}
/** The stage's node stopped answering, or lost the task. */
class NodeGone extends Error {}

const hostForUrl = (ip: string) => { const a = plainIp(ip); return a.includes(':') ? `[${a}]` : a }

export function createPipelines (config: PipelinesConfig, deps: PipelinesDeps): Pipelines {
  const { log, blobs } = deps
  const store = createPipelineStore({ dataDir: config.dataDir })
  const events = new EventEmitter()
  events.setMaxListeners(0)
  const goneMs = config.goneMs ?? 5000
  const placeMs = config.placeMs ?? 30_000
  /** pipelines being driven, by id */
  const running = new Map<string, { p: Pipeline, ctl: AbortController, done: Promise<void> }>()
  let closing = false
  let unwritable = false

  const tokenOf = (p: Pipeline) => p.token ?? config.token
  const api = (p: Pipeline, n: StageNode) => peerApi(n.url, tokenOf(p))
  const at = (p: Pipeline, s: Stage) => `stage ${p.stages.indexOf(s) + 1}/${p.stages.length} (${s.service})`

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

  /** Nodes that hold a blob a stage needs: those that made or fetched it, then this node if it holds it. */
  function sourcesOf (p: Pipeline, sha: string): StageNode[] {
    const self = deps.self()
    const out = p.stages.filter((x) => x.out?.sha256 === sha).flatMap((x) => x.holders ?? [])
    if (blobs.size(sha) !== undefined) out.push(self)
    return out.filter((n, i) => out.findIndex((x) => x.id === n.id) === i)
  }

  /** Makes `target` hold every file of the task: it pulls each it lacks from a node that has it, never through the client. */
  async function supply (p: Pipeline, target: PeerInfo, body: TaskBody, signal: AbortSignal) {
    const self = deps.self()
    const node = peerApi(target.url, tokenOf(p))
    const shas = [...new Set([...body.inputs, ...body.files].map((f) => f.sha256))]
    const missing = await node.missing(shas)
    for (const sha of missing) {
      let last: Error | undefined
      let done = false
      for (const src of sourcesOf(p, sha)) {
        if (src.id === target.id) continue
        // this node as the target sees it: the address its requests come from
        const from = src.id === self.id ? `http://${hostForUrl(node.localAddress() ?? '127.0.0.1')}:${self.port}` : src.url
        try {
          await node.pull(sha, from, signal)
          done = true
          break
        } catch (e) {
          if (signal.aborted) throw e
          last = e as Error
        }
      }
      if (!done) throw new Error(`cannot bring file ${sha.slice(0, 12)} to ${target.name}: ${last?.message ?? 'no node holds it any more'}`)
      const holder = { id: target.id, name: target.name, url: target.url }
      for (const st of p.stages) if (st.out?.sha256 === sha && !st.holders?.some((h) => h.id === target.id)) st.holders = [...st.holders ?? [], holder]
    }
  }

  interface TaskBody {
    service: string
    inputs: Array<{ sha256: string, path?: string, prearg?: string, size?: number }>
    files: Array<{ sha256: string, path: string, size?: number }>
    printer?: string
    cache?: boolean
  }

  /** The stage as a task by digest, the previous output in place of its reference. */
  function taskBody (p: Pipeline, s: Stage): TaskBody {
    const prev = p.stages[p.stages.indexOf(s) - 1]
    return {
      service: s.service,
      inputs: s.inputs.map((i) => isPrevious(i)
        ? { sha256: prev.out!.sha256, path: i.path ?? prev.out!.name, ...(i.prearg ? { prearg: i.prearg } : {}), ...(prev.out!.size !== undefined ? { size: prev.out!.size } : {}) }
        : i),
      files: s.files,
      ...(s.printer ? { printer: s.printer } : {}),
      ...(p.cache === false ? { cache: false } : {}),
    }
  }

  /** Candidates that hold the result or the most data first, as the client orders them (src/scheduler/data.ts). */
  async function byData (p: Pipeline, peers: PeerInfo[], body: TaskBody): Promise<PeerInfo[]> {
    if (peers.length < 2) return peers
    const asked = peers.slice(0, 8)
    const total = [...body.inputs, ...body.files].reduce((n, f) => n + (f.size ?? 0), 0)
    const answers = await Promise.all(asked.map(async (peer) => {
      try {
        const h = await peerApi(peer.url, tokenOf(p)).lookup(body, 1500)
        return { hit: h.hit && p.cache !== false, missingBytes: h.missingBytes ?? total }
      } catch {
        return undefined
      }
    }))
    return [...preferData(asked, answers, total), ...peers.slice(asked.length)]
  }

  /** Chooses a node for the stage (load, then data; the printer's own node), brings it the files and submits the task. */
  async function place (p: Pipeline, s: Stage, signal: AbortSignal) {
    s.state = 'placing'
    save(p)
    const body = taskBody(p, s)
    const until = Date.now() + placeMs
    for (;;) {
      const peers = await deps.view.peers()
      const needs = { printer: s.printer }
      // a stage whose node died runs elsewhere; on the same node only when no other offers the service
      let ranked = rank(s.service, needs, peers, { now: Date.now(), avoid: new Map(s.tried.map((id) => [id, Infinity])) })
      if (!ranked.length && s.tried.length) ranked = rank(s.service, needs, peers)
      const errors: string[] = []
      for (const peer of await byData(p, ranked.map((c) => c.peer), body)) {
        try {
          await supply(p, peer, body, signal)
          const t = await peerApi(peer.url, tokenOf(p)).submit(body)
          Object.assign(s, { node: { id: peer.id, name: peer.name, url: peer.url }, task: t.id, state: t.status })
          for (const k of ['percent', 'progress', 'exitCode', 'error', 'started', 'ended'] as const) delete s[k]
          s.tried.push(peer.id)
          save(p)
          log(`pipeline ${p.id} ${at(p, s)} on ${peer.name}: task ${t.id}`)
          return
        } catch (e) {
          if (signal.aborted) throw e
          // the task itself is wrong (a prearg, a path): another node would say the same
          if (e instanceof PeerRefused && e.status === 400 && !/unknown service|no printer/.test(e.message)) {
            throw new StageFailure(`${peer.name} refused ${at(p, s)}: ${String(e.details.error ?? e.message)}`)
          }
          errors.push(`${peer.name}: ${(e as Error).message}`)
        }
      }
      if (Date.now() > until) {
        if (errors.length) throw new StageFailure(`no node took ${at(p, s)}: ${errors.join('; ')}`)
        throw new StageFailure(`no node offers ${s.service}${s.printer ? ` with printer ${s.printer}` : ''}; the nodes known: ${peers.map((x) => `${x.name} (${x.services.join(',') || 'nothing'})`).join('; ')}`)
      }
      await sleep(1000, undefined, { signal })
    }
  }

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
      const missing = blobs.missing(digestsOf(r))
      if (missing.length) {
        throw new TaskError('conflict', `${missing.length} file(s) of this pipeline are not on this node: upload them (PUT /api/v1/blobs/SHA256) and send it again`, { missing })
      }
      let id = newPipelineId()
      while (running.has(id) || store.get(id)) id = newPipelineId()
      const p: Pipeline = {
        id, status: 'running', client, ctime: Date.now() / 1000, stage: 0,
        stages: r.stages.map((s) => ({ service: s.service, inputs: s.inputs, files: s.files, ...(s.printer ? { printer: s.printer } : {}), state: 'waiting', tried: [] })),
        ...(r.cache === false ? { cache: false } : {}),
        ...(r.notifier ? { notifier: r.notifier } : {}),
        ...(token ? { token } : {}),
      }
      try {
        store.save(p)
      } catch (e) {
        throw new StoreUnwritable(e as Error)
      }
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
