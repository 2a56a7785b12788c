// Baseline for bench/roundtrip-1g.sh: a bare Node HTTP server. PUT or POST /f streams the request
// body to DIR/f; GET /f streams it back. No parsing, no copies: the ceiling for one round trip.
// Usage: node bench/baselines/stream-server.mjs DIR   (prints "listening PORT", 127.0.0.1 only)
import { createServer } from 'node:http'
import { createReadStream, createWriteStream, statSync } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import { join } from 'node:path'

const dir = process.argv[2]
if (!dir) throw new Error('usage: stream-server.mjs DIR')
const file = join(dir, 'upload.bin')

const server = createServer((req, res) => {
  if (req.url !== '/f') { res.writeHead(404).end(); return }
  if (req.method === 'PUT' || req.method === 'POST') {
    pipeline(req, createWriteStream(file)).then(
      () => res.writeHead(201, { 'content-type': 'text/plain' }).end(`${statSync(file).size}\n`),
      (err) => res.writeHead(500).end(`${err.message}\n`),
    )
    return
  }
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': statSync(file).size })
    pipeline(createReadStream(file), res).catch(() => res.destroy())
    return
  }
  res.writeHead(405).end()
})
server.requestTimeout = 0
server.listen(0, '127.0.0.1', () => console.log(`listening ${server.address().port}`))
process.once('SIGTERM', () => server.close(() => process.exit(0)))
