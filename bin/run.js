#!/usr/bin/env node
'use strict'
// Also the *.cloud commands (symlinks to this file, as in the seed): the name it was called by decides.
// Runs the client as `npm run build` bundled it (scripts/bundle-client.mjs), one CommonJS file,
// compiled with V8's code cache when an earlier run left one: a short run starts faster. The cache
// (main.cjs.cloud.cache for the *.cloud names, main.cjs.cli.cache else) is written beside the bundle
// after a run that had none or a stale one; a build replaces the folder, and with it the caches.

// `rrcloud node` is a long-lived server: a young generation of at most 2 MiB (V8's default grows to
// 16) keeps a node that has been busy from holding ~30 MiB it no longer needs. Node 22.15 and later
// start again as the same process with the flag. Earlier ones cannot set its size after start, but
// can keep the young generation from growing past the 1 MiB it starts with (a flag V8 reads each
// time it would grow it). A flag given on the command line or in NODE_OPTIONS wins.
if (process.argv[2] === 'node' &&
    ![...process.execArgv, ...(process.env.NODE_OPTIONS || '').split(/\s+/)].some((a) => a.startsWith('--max-semi-space-size'))) {
  if (typeof process.execve === 'function') {
    process.execve(process.execPath, [process.execPath, '--max-semi-space-size=2', ...process.execArgv, ...process.argv.slice(1)], process.env)
  }
  require('node:v8').setFlagsFromString('--semi-space-growth-factor=1')
}
const { accessSync, constants, readFileSync, renameSync, rmSync, writeFileSync } = require('node:fs')
const { basename, dirname, join } = require('node:path')
const { createRequire, wrap } = require('node:module')
const { Script } = require('node:vm')

const file = join(__dirname, '..', 'dist', 'bundle', 'main.cjs')
const cacheFile = `${file}.${basename(process.argv[1]).endsWith('.cloud') ? 'cloud' : 'cli'}.cache`
let cachedData
try { cachedData = readFileSync(cacheFile) } catch {}
const script = new Script(wrap(readFileSync(file, 'utf8')), { filename: file, cachedData })
const bundle = { exports: {} }
script.runInThisContext()(bundle.exports, createRequire(file), bundle, file, dirname(file))

function keepCache () {
  if (cachedData && !script.cachedDataRejected) return
  try { accessSync(dirname(file), constants.W_OK) } catch { return } // installed read-only: no cache
  const tmp = `${cacheFile}.${process.pid}`
  try {
    writeFileSync(tmp, script.createCachedData())
    renameSync(tmp, cacheFile)
  } catch {
    try { rmSync(tmp, { force: true }) } catch {}
  }
}

bundle.exports.main(process.argv[1], process.argv.slice(2)).then(keepCache, (err) => {
  console.error(err)
  process.exitCode = 1
})
