import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { once } from 'node:events'
import type { LookupAddress } from 'node:dns'
import { parseCidrs } from '../../src/node/access.js'
import { createNotifier, refusedAddress } from '../../src/node/notifier.js'

const until = async (fn: () => boolean, what: string) => {
  for (const end = Date.now() + 5000; !fn();) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

test('refused: link-local and metadata addresses always, others only outside a given --allow', () => {
  for (const ip of ['169.254.169.254', '169.254.0.1', '::ffff:169.254.169.254', 'fe80::1', 'FE80::a9fe:a9fe', '100.100.100.200', 'fd00:ec2::254']) {
    assert.match(refusedAddress(ip) ?? '', /link-local or cloud metadata/, ip)
  }
  for (const ip of ['127.0.0.1', '::1', '192.168.1.5', '8.8.8.8', '100.100.100.1']) assert.equal(refusedAddress(ip), undefined, ip)
  const allow = parseCidrs(['192.168.1.0/24'])
  assert.equal(refusedAddress('192.168.1.5', allow), undefined)
  assert.match(refusedAddress('127.0.0.1', allow) ?? '', /outside the node's --allow/)
  const n = createNotifier({ allow }, { log: () => {} })
  assert.match(n.refusal('http://[fe80::1]:8080/x') ?? '', /link-local/)
  assert.match(n.refusal('http://10.0.0.1/x') ?? '', /--allow/)
  assert.equal(n.refusal('http://$myip/done?$id'), undefined, 'a name is checked when sent')
  assert.equal(n.refusal('http://192.168.1.7/x'), undefined)
})

test('a name is resolved once and the request goes to the checked address; a name with one refused address is not called', async () => {
  const hits: string[] = []
  // only on 127.0.0.3: reached only through the address the lookup gave, never by resolving localhost again
  const server = createServer((req, res) => {
    hits.push(req.url ?? '')
    if (req.url === '/jump') res.writeHead(302, { location: 'http://169.254.169.254/latest/' })
    res.end('ok')
  }).listen(0, '127.0.0.3')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port
  const lines: string[] = []
  const answers: Record<string, LookupAddress[]> = {
    localhost: [{ address: '127.0.0.3', family: 4 }],
    'rebind.localhost': [{ address: '127.0.0.3', family: 4 }, { address: '169.254.169.254', family: 4 }],
  }
  const asked: string[] = []
  const n = createNotifier({}, { log: (l) => lines.push(l), lookup: async (h) => { asked.push(h); return answers[h] ?? [] } })
  try {
    n.notify(`http://localhost:${port}/ok`)
    await until(() => lines.some((l) => l.endsWith('/ok: 200')), 'the call')
    assert.deepEqual(hits, ['/ok'])
    assert.deepEqual(asked, ['localhost'])
    n.notify(`http://rebind.localhost:${port}/bad`)
    await until(() => lines.some((l) => l.includes('/bad')), 'the refusal')
    assert.match(lines.find((l) => l.includes('/bad'))!, /refused: rebind\.localhost resolves to 169\.254\.169\.254, a link-local or cloud metadata address; nothing sent$/)
    // a redirect is not followed
    n.notify(`http://localhost:${port}/jump`)
    await until(() => lines.some((l) => l.includes('/jump')), 'the redirect')
    assert.match(lines.find((l) => l.includes('/jump'))!, /: 302$/)
    await new Promise((r) => setTimeout(r, 200))
    assert.deepEqual(hits, ['/ok', '/jump'])
  } finally {
    await n.close()
    await n.close()
    server.close()
  }
  n.notify(`http://localhost:${port}/late`)
  assert.match(lines.at(-1)!, /late not called: the node is stopping/)
})
