// Baseline for bench/node-rate.ts: the least a koa + @koa/multer server does for one upload,
// stream it to disk and reply, so the node's figure can be read as a ratio of this one.
// Usage: node bench/baselines/koa-upload.mjs DIR   (prints "listening PORT", 127.0.0.1 only)
import Koa from 'koa'
import multer from '@koa/multer'
import { randomBytes } from 'node:crypto'
import { mkdirSync } from 'node:fs'

const dir = process.argv[2]
if (!dir) throw new Error('usage: koa-upload.mjs DIR')
mkdirSync(dir, { recursive: true })

const upload = multer({
  storage: multer.diskStorage({
    destination: dir,
    filename: (_req, _file, cb) => cb(null, randomBytes(12).toString('hex')),
  }),
}).any()

const app = new Koa()
app.use(upload)
app.use((ctx) => {
  const files = ctx.request.files ?? []
  ctx.body = { fields: ctx.request.body, files: files.map((f) => ({ field: f.fieldname, name: f.filename, size: f.size })) }
})
const server = app.listen(0, '127.0.0.1', () => console.log(`listening ${server.address().port}`))
process.once('SIGTERM', () => server.close(() => process.exit(0)))
