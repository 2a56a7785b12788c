// The farm as the client sees it: every node's printers and queue, a job sent to a node that has
// printers of its group, and the changes (clear a bed, remove, move, pause, resume).
import { statSync } from 'node:fs'
import { debugLog } from './log.js'
import type { Server } from './address.js'
import { explain, NodeError } from './api.js'
import type { ClientContext } from './context.js'
import { ClientError, EXIT, usage } from './errors.js'
import { StreamingForm } from './form.js'
import { fetchText, postForm, type OnProgress } from './http.js'
import { everyNode } from './lookup.js'
import { rank } from '../scheduler/rank.js'
import { VERSION } from '../version.js'
import type { JobView } from '../farm/views.js'

const log = debugLog('rrcloud:farm')

/** A printer as a node's GET /api/v1/printers lists it. */
export interface FarmPrinter {
  node: string
  name: string
  port: string
  state: 'idle' | 'printing' | 'paused' | 'finished' | 'error' | 'disconnected'
  connection: string
  groups: string[]
  autoclear: boolean
  since: number
  job?: { task?: string; file?: string; job?: string; copy?: number; owner?: string; status?: string }
  progress?: { percent: number }
  temperatures?: string
  error?: string
}

/** A job as a node's GET /api/v1/queue lists it. */
export type FarmJob = JobView

/** The farm calls of one node's JSON API. */
export function farmApi (server: Server, token?: string) {
  const headers: Record<string, string> = { accept: 'application/json', 'user-agent': `rrcloud/${VERSION}`, ...(token ? { authorization: `Bearer ${token}` } : {}) }
  async function call<T> (method: string, path: string, body?: unknown): Promise<T> {
    const url = `${server.url}/api/v1/${path}`
    log('%s %s', method, url)
    const json = body === undefined ? undefined : JSON.stringify(body)
    let r
    try {
      r = await fetchText(url, { method, headers: json === undefined ? headers : { ...headers, 'content-type': 'application/json' }, body: json, connectTimeoutMs: 5000, timeoutMs: 30000 })
    } catch (e) {
      throw explain(server, e)
    }
    if (r.statusCode >= 300) throw explain(server, undefined, r.statusCode, r.body)
    return JSON.parse(r.body) as T
  }
  return {
    server,
    printers: () => call<FarmPrinter[]>('GET', 'printers'),
    clear: (name: string) => call<FarmPrinter>('POST', `printers/${encodeURIComponent(name)}/clear`, {}),
    queue: (group?: string) => call<FarmJob[]>('GET', `queue${group ? `?group=${encodeURIComponent(group)}` : ''}`),
    job: (id: string) => call<FarmJob>('GET', `queue/${encodeURIComponent(id)}`),
    remove: (id: string) => call<FarmJob>('DELETE', `queue/${encodeURIComponent(id)}`),
    move: (id: string, to: number) => call<FarmJob[]>('POST', `queue/${encodeURIComponent(id)}/move`, { to }),
    pause: (group?: string) => call<{ node: string, paused: string[] }>('POST', 'queue/pause', group ? { group } : {}),
    resume: (group?: string) => call<{ node: string, paused: string[] }>('POST', 'queue/resume', group ? { group } : {}),
    async add (file: string, where: { group?: string, printer?: string }, copies: number, onProgress?: OnProgress): Promise<FarmJob> {
      const form = new StreamingForm()
      if (where.group) form.append('group', where.group)
      if (where.printer) form.append('printer', where.printer)
      form.append('copies', String(copies))
      form.appendFile('file', file)
      log('POST %s/api/v1/queue', server.url)
      let r
      try {
        r = await postForm(`${server.url}/api/v1/queue`, form, { headers, connectTimeoutMs: 5000 }, onProgress)
      } catch (e) {
        throw explain(server, e)
      }
      if (r.statusCode >= 300) throw explain(server, undefined, r.statusCode, r.body)
      return JSON.parse(r.body) as FarmJob
    },
  }
}

/** Every node's answer to a farm call; nodes that answer 404 (no farm there) are left out. */
export async function everyFarmNode<T> (ctx: ClientContext, fn: (api: ReturnType<typeof farmApi>) => Promise<T>) {
  const { answers, failed } = await everyNode(ctx, async (a) => {
    try {
      return await fn(farmApi(a.server, ctx.token))
    } catch (e) {
      if (e instanceof NodeError && e.status === 404) return undefined
      throw e
    }
  })
  return { answers: answers.flatMap(({ api, value }) => value === undefined ? [] : [{ server: api.server, value }]), failed }
}

/** Every printer of the LAN (each node asked), and the nodes that could not be asked. */
export async function lanPrinters (ctx: ClientContext): Promise<{ printers: Array<FarmPrinter & { url: string }>, failed: NodeError[] }> {
  const { answers, failed } = await everyFarmNode(ctx, (api) => api.printers())
  const printers = answers.flatMap(({ server, value }) => value.map((p) => ({ ...p, url: server.url })))
    .sort((a, b) => a.node.localeCompare(b.node) || a.name.localeCompare(b.name))
  return { printers, failed }
}

/** Every node's queue, in each node's order. */
export async function lanQueue (ctx: ClientContext, group?: string): Promise<{ jobs: Array<FarmJob & { url: string }>, failed: NodeError[] }> {
  const { answers, failed } = await everyFarmNode(ctx, (api) => api.queue(group))
  return { jobs: answers.flatMap(({ server, value }) => value.map((j) => ({ ...j, url: server.url }))), failed }
}

/** The node whose queue holds a job. */
export async function findJob (ctx: ClientContext, id: string) {
  if (!/^j\d{1,12}-\d{6}$/.test(id)) throw usage(`"${id}" is not a job id (they look like j1361982308-837500; see \`rrcloud queue\`)`)
  const { answers } = await everyFarmNode(ctx, (api) => api.job(id))
  const found = answers[0]
  if (!found) throw new ClientError(`no job ${id} in the queue of any node (see \`rrcloud queue\`)`, EXIT.failed)
  return { api: farmApi(found.server, ctx.token), job: found.value }
}

/** Clears a printer's bed on the node it is attached to. */
export async function clearPrinter (ctx: ClientContext, name: string): Promise<FarmPrinter> {
  const { printers } = await lanPrinters(ctx)
  const holders = printers.filter((p) => p.name === name || p.port === name)
  if (!holders.length) {
    throw new ClientError(`no printer ${name} on the LAN; ${printers.length ? `printers: ${printers.map((p) => `${p.name} (${p.node})`).join(', ')}` : 'no node has a printer'}`, EXIT.failed)
  }
  if (holders.length > 1) throw usage(`printer ${name} is on several nodes (${holders.map((p) => p.node).join(', ')}): name one with --s=HOST`)
  return farmApi({ url: holders[0].url, name: holders[0].node }, ctx.token).clear(holders[0].name)
}

/**
 * Sends a job to the queue of a node that has printers of its group (or the printer): the node on
 * this machine when it has one, else the best by the scheduler; the next one when a node cannot
 * take it.
 */
export async function queuePrint (ctx: ClientContext, file: string, where: { group?: string, printer?: string }, copies: number, onProgress?: OnProgress): Promise<FarmJob & { url: string }> {
  try {
    if (!statSync(file).isFile()) throw new Error('not a file')
  } catch {
    throw usage(`cannot read ${file}: name a G-code file`)
  }
  const peers = await ctx.source.peers()
  const needs = where.printer !== undefined ? { printer: where.printer } : { group: where.group! }
  const ranked = rank('printrun', needs, peers).map((c) => c.peer)
  const local = ranked.find((p) => p.local)
  const order = local ? [local, ...ranked.filter((p) => p !== local)] : ranked
  if (!order.length) {
    const all = peers.flatMap((p) => (p.printers ?? []).map((x) => `${x.name}${x.groups?.length ? ` [${x.groups.join(',')}]` : ''} on ${p.name}`))
    throw new ClientError(`no node has ${where.printer !== undefined ? `printer ${where.printer}` : `printers of group ${where.group}`}; ` +
      `${all.length ? `printers: ${all.join('; ')}` : 'no node has a printer'} (a printer joins a group with rrcloud node --printer NAME=PORT,group=GROUP)`, EXIT.usage)
  }
  let last: NodeError | undefined
  for (const peer of order) {
    const api = farmApi({ url: peer.url, name: peer.name }, ctx.token)
    try {
      const job = await api.add(file, where, copies, onProgress)
      return { ...job, url: peer.url }
    } catch (e) {
      if (!(e instanceof NodeError) || !e.retry) throw e
      log('%s cannot take the job: %s', peer.url, e.message)
      last = e
    }
  }
  throw last!
}

export const jobTarget = (j: FarmJob) => j.group !== undefined ? `group ${j.group}` : `printer ${j.printer}`

/**
 * Holds (`pause`) or lets go (`resume`) the farm queue of every node, of one group or all; the
 * nodes' answers and a line for each, as `rrcloud queue pause|resume` prints them.
 */
export async function holdQueues (ctx: ClientContext, action: 'pause' | 'resume', group: string | undefined, say: (line: string) => void) {
  const { answers, failed } = await everyFarmNode(ctx, (api) => api[action](group))
  for (const e of failed) process.stderr.write(`rrcloud: ${e.message}\n`)
  const out = answers.map(({ value }) => value)
  for (const r of out) say(`${r.node}: ${r.paused.length ? `paused: ${r.paused.map((g) => g === '*' ? 'all jobs' : `group ${g}`).join(', ')}` : 'not paused'}`)
  return out
}
