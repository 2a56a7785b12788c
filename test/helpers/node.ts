import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startNode, type NodeConfig, type RunningNode } from '../../src/node/node.js'

export const root = fileURLToPath(new URL('../..', import.meta.url))
export const fixtures = join(root, 'test', 'fixtures')
export const testServices = join(fixtures, 'services')

export interface TestNode extends RunningNode {
  dataDir: string
  lines: string[]
  stop (): Promise<void>
}

/** A node on 127.0.0.1, a free port and a fresh data folder; stop() closes it and removes the folder. */
export async function testNode (config: Partial<NodeConfig> = {}): Promise<TestNode> {
  const dataDir = config.dataDir ?? mkdtempSync(join(tmpdir(), 'rrcloud-test-'))
  const lines: string[] = []
  const node = await startNode({
    port: 0,
    host: '127.0.0.1',
    slots: 2,
    serviceDirs: [testServices],
    graceMs: 300,
    mdns: false,
    log: (l) => lines.push(l),
    ...config,
    dataDir,
  })
  return Object.assign(node, {
    dataDir,
    lines,
    async stop () {
      await node.close()
      if (!config.dataDir) rmSync(dataDir, { recursive: true, force: true })
    },
  })
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Polls until fn returns a truthy value, or fails after timeoutMs. */
export async function until<T> (fn: () => Promise<T> | T, timeoutMs = 10000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

export async function getJson (url: string, init?: RequestInit): Promise<any> {
  const r = await fetch(url, { ...init, headers: { accept: 'application/json', ...init?.headers } })
  return r.json()
}

/** Submits a task with fetch; files are [field, content, filename]. */
export async function post (base: string, fields: Record<string, string>, files: Array<[string, string | Buffer, string]> = [], headers: Record<string, string> = {}) {
  const form = new FormData()
  for (const [k, v] of Object.entries(fields)) form.append(k, v)
  for (const [k, v, name] of files) form.append(k, new Blob([v]), name)
  const r = await fetch(`${base}/api/v1/tasks`, { method: 'POST', body: form, headers })
  return { status: r.status, body: await r.json() as any }
}

export async function waitTask (base: string, id: string, timeoutMs = 30000): Promise<any> {
  return until(async () => {
    const t = await getJson(`${base}/api/v1/tasks/${id}`)
    return ['complete', 'failed', 'cancelled'].includes(t.status) ? t : undefined
  }, timeoutMs, `task ${id} to end`)
}
