// Baseline for bench/load-vs-baseline.ts: the least a koa + @koa/multer server does to run a tool
// on an upload: stream it to disk, spawn `cat` on it (no shell) with its output to a file, and
// reply once cat has exited. Every reply is a completed run. No queue, no limit on how many run.
// Usage: node bench/baselines/koa-spawn.mjs DIR   (prints "listening PORT", 127.0.0.1 only)
import Koa from 'koa'
import multer from '@koa/multer'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, mkdirSync, openSync } from 'node:fs'
import { join } from 'node:path'

const dir = process.argv[2]
if (!dir) throw new Error('usage: koa-spawn.mjs DIR')
mkdirSync(join(dir, 'in'), { recursive: true })
mkdirSync(join(dir, 'out'), { recursive: true })

const upload = multer({
  storage: multer.diskStorage({
    destination: join(dir, 'in'),
    filename: (_req, _file, cb) => cb(null, randomBytes(12).toString('hex')),
  }),
}).any()

/** cat FILE > OUT, no shell; resolves with its exit code */
function cat (file, out) {
  const fd = openSync(out, 'w')
  return new Promise((resolve, reject) => {
    const child = spawn('cat', [file], { stdio: ['ignore', fd, 'ignore'], shell: false })
    closeSync(fd)
    child.once('error', reject)
    child.once('close', resolve)
  })
}

const app = new Koa()
app.use(upload)
app.use(async (ctx) => {
  const file = (ctx.request.files ?? [])[0]
  if (!file) { ctx.status = 400; ctx.body = { error: 'no file' }; return }
  const out = join(dir, 'out', file.filename)
  const code = await cat(file.path, out)
  ctx.status = code === 0 ? 201 : 500
  ctx.body = { id: file.filename, status: code === 0 ? 'complete' : 'failed', exitCode: code }
})
const server = app.listen(0, '127.0.0.1', () => console.log(`listening ${server.address().port}`))
process.once('SIGTERM', () => server.close(() => process.exit(0)))
