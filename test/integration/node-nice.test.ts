// Tools run at the node's --nice (rrcloud node: 10), so that the node's HTTP API and printer
// streaming keep the CPU while slicers run; 0 leaves them as the node is. Real processes: the
// tool reports its own priority from /proc.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { post, testNode, until, getJson } from '../helpers/node.js'

const dir = fileURLToPath(new URL('../fixtures/nice-services', import.meta.url))
const hasAutogroup = existsSync('/proc/self/autogroup')

async function runTool (nice: number | undefined): Promise<string> {
  const node = await testNode({ serviceDirs: [dir], ...(nice === undefined ? {} : { nice }) })
  try {
    const base = `http://127.0.0.1:${node.port}`
    const r = await post(base, { service: 'niceness', format: 'json' }, [['fileIn0', 'x\n', 'in.txt']])
    assert.equal(r.status, 201, JSON.stringify(r.body))
    const id = r.body.id as string
    const t = await until(async () => {
      const v = await getJson(`${base}/api/v1/tasks/${id}`)
      return v.status === 'complete' || v.status === 'failed' ? v : undefined
    }, 10_000, `task ${id} to end`)
    assert.equal(t.status, 'complete', JSON.stringify(t))
    return await (await fetch(`${base}/api/v1/tasks/${id}/output`)).text()
  } finally {
    await node.stop()
  }
}

/** Field 19 of /proc/PID/stat; the command name (field 2) may hold spaces, so count after its `)`. */
const niceOf = (out: string) => {
  const stat = out.split('\n')[0]
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])
}

test('a tool runs at the node\'s --nice; 0 leaves it as the node', async () => {
  assert.equal(niceOf(await runTool(7)), 7)
  assert.equal(niceOf(await runTool(0)), 0)
  assert.equal(niceOf(await runTool(undefined)), 0)
})

test('the tool\'s session is niced too, where the kernel schedules sessions as groups', { skip: !hasAutogroup && 'no /proc/self/autogroup on this kernel' }, async () => {
  assert.match(await runTool(7), /^\/autogroup-\d+ nice 7$/m)
  assert.match(await runTool(0), /^\/autogroup-\d+ nice 0$/m)
})
