// What `npm install -g rrcloud` gives a user: the tarball `npm pack` makes, installed into an empty
// prefix with an empty HOME (dependencies from the npm registry, no dev dependencies), then the
// installed `rrcloud`, `rrcloud node` and `*.cloud` commands used from a folder outside the checkout.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fixtures, root, waitTask } from '../helpers/node.js'
import { ensureBuilt } from '../fixtures/client/harness.js'

const INSTALL_MS = 6 * 60_000
const dir = mkdtempSync(join(tmpdir(), 'rrcloud-package-'))
const prefix = join(dir, 'prefix')
const home = join(dir, 'home')
const cwd = join(dir, 'work')
const installed = join(prefix, 'lib', 'node_modules', 'rrcloud')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
/**
 * What a user's shell has: the installed commands, node, the system, nothing of the checkout; the
 * machine's network settings (proxy, CA certificates) stay, npm's settings for this run do not.
 */
const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(npm_|NODE_OPTIONS$|INIT_CWD$|RRCLOUD_)/i.test(k)))
const env: NodeJS.ProcessEnv = {
  ...inherited,
  PATH: [join(prefix, 'bin'), dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':'),
  HOME: home, LANG: 'C.UTF-8', RRCLOUD_MDNS: 'off', RRCLOUD_LOCAL: 'off',
}
let node: ChildProcess | undefined
let at = ''

interface Ran { code: number | null, stdout: string, stderr: string }
function sh (file: string, args: string[], o: { timeoutMs?: number, env?: NodeJS.ProcessEnv, cwd?: string } = {}): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: o.cwd ?? cwd, env: o.env ?? env, timeout: o.timeoutMs ?? 60_000, maxBuffer: 16 * 2 ** 20 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }))
  })
}

/**
 * Headers for native modules built from source (better-sqlite3 when no prebuilt binary can be
 * fetched): those of the Node.js that runs the tests, as npm would find them in a user's npmrc.
 */
function nodedir (): string | undefined {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir
  const d = dirname(dirname(process.execPath))
  return existsSync(join(d, 'include', 'node', 'node_version.h')) ? d : undefined
}

before(async () => {
  ensureBuilt()
  for (const d of [prefix, home, cwd]) mkdirSync(d, { recursive: true })
  // the build is the one the tests use: packed as it is (prepack would build it again)
  const packed = await sh('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], { cwd: root, env: { ...process.env, RRCLOUD_MDNS: 'off' } })
  assert.equal(packed.code, 0, packed.stderr)
  const tarball = join(dir, packed.stdout.trim().split('\n').pop()!)
  const nd = nodedir()
  const started = Date.now()
  const install = await sh('npm', ['install', '-g', '--prefix', prefix, '--no-fund', '--no-audit', '--loglevel=error', tarball], {
    timeoutMs: INSTALL_MS,
    env: { ...env, npm_config_cache: join(dir, 'npm-cache'), npm_config_jobs: 'max', ...(nd ? { npm_config_nodedir: nd } : {}) },
  })
  assert.equal(install.code, 0, `npm install -g exited ${install.code}:\n${install.stderr.slice(-4000)}`)
  console.log(`installed in ${Math.round((Date.now() - started) / 1000)} s`)
  copyFileSync(join(fixtures, 'cube.scad'), join(cwd, 'cube.scad'))
  writeFileSync(join(cwd, 'a.txt'), 'hello\n')
}, { timeout: INSTALL_MS + 60_000 })

after(async () => {
  if (node && node.exitCode === null && node.signalCode === null) {
    node.kill('SIGTERM')
    await new Promise((resolve) => node!.once('exit', resolve))
  }
  rmSync(dir, { recursive: true, force: true })
})

test('the package holds the built client, the commands and the services, and installs without dev dependencies', () => {
  for (const name of Object.keys(pkg.bin)) assert.ok(existsSync(join(prefix, 'bin', name)), `${name} on the PATH`)
  assert.ok(existsSync(join(installed, 'dist', 'bundle', 'main.cjs')), 'the client bundle')
  assert.ok(existsSync(join(installed, 'oclif.manifest.json')), 'the commands manifest')
  assert.deepEqual(readdirSync(join(installed, 'services')).sort(), readdirSync(join(root, 'services')).sort())
  assert.ok(!existsSync(join(installed, 'src')) && !existsSync(join(installed, 'test')), 'no sources or tests')
  for (const dev of Object.keys(pkg.devDependencies)) assert.ok(!existsSync(join(installed, 'node_modules', dev)), `${dev} (a dev dependency) not installed`)
  for (const dep of Object.keys(pkg.dependencies)) assert.ok(existsSync(join(installed, 'node_modules', dep)), `${dep} installed`)
})

test('rrcloud: help, version, doctor', async () => {
  const help = await sh('rrcloud', ['--help'])
  assert.equal(help.code, 0, help.stderr)
  assert.match(help.stdout, /^ {2}node\s/m)
  const version = await sh('rrcloud', ['--version'])
  assert.match(version.stdout, new RegExp(`^rrcloud/${pkg.version.replace(/\./g, '\\.')} `))
  const doctor = await sh('rrcloud', ['doctor', '--json'])
  assert.equal(doctor.code, 0, doctor.stderr)
  assert.match(doctor.stdout, /"echo"/, 'the services are found')
})

test('rrcloud node runs tasks; rrcloud and the *.cloud commands use it', async () => {
  node = spawn('rrcloud', ['node', '--no-mdns', '--port=0', '--host=127.0.0.1', `--data-dir=${join(dir, 'data')}`, '--name=installed'],
    { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  node.stderr!.on('data', (d) => { out += d })
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening" line in 20 s: ${out}`)), 20_000)
    node!.once('exit', (code) => reject(new Error(`rrcloud node exited ${code}: ${out}`)))
    node!.stdout!.on('data', (d) => {
      out += d
      const m = /listening on http:\/\/[\d.]+:(\d+)/.exec(out)
      if (m) { clearTimeout(timer); resolve(Number(m[1])) }
    })
  })
  at = `127.0.0.1:${port}`
  const meta = await (await fetch(`http://${at}/?service=meta&format=json`)).json() as { serverName: string, services: string }
  assert.equal(meta.serverName, 'installed')
  assert.ok(meta.services.split(',').includes('echo'), `services: ${meta.services}`)

  const echo = await sh('echo.cloud', [`--s=${at}`, 'a.txt'])
  assert.equal(echo.code, 0, echo.stderr)
  assert.equal(echo.stdout, 'hello\n')
  const async = await sh('rrcloud', [`--s=${at}`, 'echo', 'a.txt'])
  assert.equal(async.code, 0, async.stderr)
  const id = /^id: (\S+)$/m.exec(async.stdout)?.[1]
  assert.ok(id, async.stdout)
  await waitTask(`http://${at}`, id)
  const info = await sh('rrcloud', ['info', id, `--s=${at}`])
  assert.match(info.stdout, /^status: complete$/m)
  if (meta.services.split(',').includes('openscad')) {
    const scad = await sh('openscad.cloud', [`--s=${at}`, 'cube.scad', '-ocube.stl'])
    assert.equal(scad.code, 0, scad.stderr)
    assert.ok(readFileSync(join(cwd, 'cube.stl'), 'utf8').startsWith('solid '))
  }
  const usage = await sh('slic3r.cloud', ['--help'])
  assert.equal(usage.code, 0, usage.stderr)
  assert.match(usage.stdout, /^Usage: slic3r\.cloud /m)
})
