import { setTimeout as sleep } from 'node:timers/promises'
import { rank, type PeerInfo } from '../scheduler/rank.js'
import { preferData } from '../scheduler/data.js'
import type { BlobStore } from '../node/blobs.js'
import { plainIp } from '../node/access.js'
import { peerApi, PeerRefused } from './peer-api.js'
import type { PeerView } from './peers.js'
import { isPrevious, stageName, type Pipeline, type Stage, type StageNode } from './pipeline.js'

/** A stage that cannot go on: the pipeline fails with this message. */
export class StageFailure extends Error {}

const hostForUrl = (ip: string) => { const a = plainIp(ip); return a.includes(':') ? `[${a}]` : a }

/** A stage as the task its node gets (POST /api/v1/tasks as JSON). */
interface TaskBody {
  service: string
  inputs: Array<{ sha256: string, path?: string, prearg?: string, size?: number }>
  files: Array<{ sha256: string, path: string, size?: number }>
  printer?: string
  cache?: boolean
}

export interface PlacerDeps {
  view: PeerView
  /** this node: its id and name, its URL from here, its port (other nodes pull its files from it) */
  self: () => StageNode & { port: number }
  /** this node's content store, which holds the files the client sent */
  blobs: BlobStore
  log: (line: string) => void
  /** writes the pipeline (and tells who waits for it) */
  save: (p: Pipeline) => void
  /** the token the nodes of a pipeline's stages get */
  tokenOf: (p: Pipeline) => string | undefined
}

/**
 * Where a stage runs: the scheduler's order over the nodes the driver knows (src/scheduler: load;
 * then a node that holds the result or most of the data; a print on its printer's node), the
 * chosen node made to hold every file of the task, pulled from the nodes that hold them, then the
 * task submitted by digest. Throws StageFailure when no node takes it within `placeMs`.
 */
export function createPlacer (config: { placeMs: number }, deps: PlacerDeps) {
  const { blobs, log, save, tokenOf } = deps
  const at = stageName
  const placeMs = config.placeMs

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


  return { place }
}
