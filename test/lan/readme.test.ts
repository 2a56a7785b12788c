// The README, followed from a fresh clone as a new user types it: its first block (install and
// start a node; run the tests), then its LAN section, line by line, on a network-namespace LAN (the
// node on one host, the user's shell on another). The lines are read from README.md, not copied here:
// a README line that stops working fails this test.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { copyFileSync, existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { netnsSkip, lines } from '../helpers/netns.js'
import { createNodeLan, root } from '../helpers/lan.js'

const skip = netnsSkip('the README is followed on a network-namespace LAN')

/** The shell lines of a README code block, without comments and blank lines. */
function shellLines (block: string): string[] {
  return block.split('\n').map((l) => l.replace(/(^|\s+)#.*$/, '').trim()).filter(Boolean)
}

function readmeBlocks (): { first: string[], lan: string[] } {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const blocks = (text: string) => [...text.matchAll(/^```sh\n([\s\S]*?)^```/gm)].map((m) => shellLines(m[1]))
  const lanSection = readme.slice(readme.indexOf('\n## Using the nodes of the LAN'))
  assert.ok(lanSection.length > 1, 'the README has its LAN section')
  return { first: blocks(readme)[0], lan: blocks(lanSection)[0] }
}

/** This machine's environment (its network settings for the registry), without the settings of the npm and rrcloud that run the tests. */
const hostEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(npm_|NODE_OPTIONS$|INIT_CWD$|RRCLOUD_)/i.test(k))) as Record<string, string>

test('the README from a fresh clone: install, start a node, the tests command, and every line of its LAN section', { skip: skip(), timeout: 10 * 60_000 }, async () => {
  const { first, lan: lanLines } = readmeBlocks()
  assert.equal(first.length, 2, `the first block: install and start a node, then run the tests: ${first.join(' | ')}`)
  const [startLine, testLine] = first
  // the tests command is the one CI runs (.ci/run): it is not run a second time here
  const ci = readFileSync(join(root, '.ci', 'run'), 'utf8').split('\n').map((l) => l.trim())
  assert.ok(ci.includes(testLine), `.ci/run runs \`${testLine}\` as its own line`)

  const nl = await createNodeLan(1, 1)
  try {
    const clone = join(nl.dir, 'rrcloud')
    execFileSync('git', ['clone', '--quiet', root, clone])
    const home = join(nl.dir, 'home')
    const env = { ...hostEnv(), HOME: home }
    // `INSTALL && ... && START`: what comes before the last `&&` installs (it needs the npm registry,
    // which the LAN cannot reach: it runs on this machine, in the clone); the last command starts
    // the node, on the LAN's first host
    const parts = startLine.split(/\s*&&\s*/)
    const start = parts.pop()!
    // (with this machine's HOME: its npm settings; the node and the client get a HOME of their own)
    if (parts.length) execFileSync('bash', ['-ec', parts.join(' && ')], { cwd: clone, env: { ...hostEnv(), RRCLOUD_MDNS: 'off' }, stdio: ['ignore', 'ignore', 'pipe'], timeout: 6 * 60_000 })
    const node = nl.lan.spawn(nl.hosts[0], ['bash', '-ec', start], { cwd: clone, env, stdio: ['ignore', 'pipe', 'pipe'] })
    const out = lines<string>(node, (s) => s)
    let err = ''
    node.stderr!.on('data', (d: Buffer) => { err += d })
    const exited = new Promise<never>((resolve, reject) => node.once('exit', (c) => reject(new Error(`\`${start}\` exited ${c}: ${err.slice(-2000)}\n${out.all.join('\n')}`))))
    exited.catch(() => {})
    await Promise.race([out.wait((l) => /mdns: advertising /.test(l), 3 * 60_000, `\`${start}\` to start a node and advertise it`), exited])

    // the files the LAN section's lines name, in the clone where the user types them
    copyFileSync(join(root, 'test', 'fixtures', 'cube.scad'), join(clone, 'test.scad'))
    copyFileSync(join(root, 'test', 'fixtures', 'slic3r.ini'), join(clone, 'prusa.ini'))
    execFileSync('openscad', ['-o', join(clone, 'huge.stl'), join(clone, 'test.scad')], { stdio: 'ignore' })

    const exports: string[] = []
    let id = ''
    for (const line of lanLines) {
      if (/^export /.test(line)) { exports.push(line); continue }
      // `ID` stands for the id an earlier line printed
      const typed = line.replace(/\bID\b/g, () => { assert.ok(id, `an earlier line printed an id for: ${line}`); return id })
      const r = await new Promise<{ code: number | null, stdout: string, stderr: string }>((resolve) => {
        const c = spawn('ip', ['netns', 'exec', nl.client.ns, 'bash', '-ec', [...exports, typed].join('\n')],
          { cwd: clone, env: { PATH: process.env.PATH!, HOME: home, LANG: 'C.UTF-8' }, stdio: ['ignore', 'pipe', 'pipe'] })
        let stdout = ''
        let stderr = ''
        c.stdout.on('data', (d) => { stdout += d })
        c.stderr.on('data', (d) => { stderr += d })
        const timer = setTimeout(() => c.kill('SIGKILL'), 120_000)
        c.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
      })
      assert.equal(r.code, 0, `\`${typed}\` exited ${r.code}:\n${r.stdout}\n${r.stderr}`)
      id = /^id: (\S+)$/m.exec(r.stdout)?.[1] ?? id
      if (/^rrcloud peers\b/.test(typed)) assert.ok(r.stdout.includes(`${nl.hosts[0].address}:4468`), `the node is listed: ${r.stdout}`)
      // an output the line asks for is written
      for (const m of typed.matchAll(/(?:--output=|\s-o)(\S+)/g)) assert.ok(statSync(join(clone, m[1])).size > 0, `\`${typed}\` wrote ${m[1]}`)
    }
    assert.ok(id, 'the asynchronous line printed an id')
    assert.ok(existsSync(join(clone, 'huge.gcode')))
  } finally {
    await nl.close()
  }
})
