import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseServer } from '../../src/client/address.js'
import { ClientError } from '../../src/client/errors.js'
import { parseRrcloudrc, readRrcloudrc } from '../../src/client/rrcloudrc.js'
import * as servers from '../../src/client/servers.js'
const { staticServers } = servers

const urls = (l: Array<{ url: string }> | undefined) => l?.map((s) => s.url)

test("the seed's rrcloudrc, comments and all", () => {
  const rc = parseRrcloudrc(`
servers = server.local,server2.local      # , separated list
slic3r.servers = server.local             # server(s) for slic3r.cloud only
openscad.servers = server2.local:8080
# a comment line
printrun.servers = raspberrypi.local, [fe80::1]:4500
token = s3cret#not-a-comment
`, 'rrcloudrc')
  assert.deepEqual(urls(rc.servers), ['http://server.local:4468', 'http://server2.local:4468'])
  assert.deepEqual(urls(rc.services.slic3r), ['http://server.local:4468'])
  assert.deepEqual(urls(rc.services.openscad), ['http://server2.local:8080'])
  assert.deepEqual(urls(rc.services.printrun), ['http://raspberrypi.local:4468', 'http://[fe80::1]:4500'])
  assert.equal(rc.token, 's3cret#not-a-comment')
})

test('a malformed file is reported with its name, line and what was expected', () => {
  const bad = (text: string, re: RegExp) => assert.throws(() => parseRrcloudrc(text, '/home/u/.rrcloudrc'),
    (e: unknown) => e instanceof ClientError && e.exit === 2 && re.test(e.message))
  bad('servers = a.local\nthis is wrong\n', /^\/home\/u\/\.rrcloudrc:2: expected "servers = host\[:port\],\.\.\."/)
  bad('\n\nserver = a.local', /\.rrcloudrc:3: unknown key "server"/)
  bad('servers = a.local:99999', /\.rrcloudrc:1: "a\.local:99999" is not a server/)
  bad('servers = ,', /\.rrcloudrc:1: servers lists no server/)
  bad('servers = bad host', /is not a server/)
})

test('server addresses: host, host:port, IPv4, IPv6, URLs; port 4468 unless given', () => {
  assert.equal(parseServer('myserver.local')?.url, 'http://myserver.local:4468')
  assert.equal(parseServer('10.0.0.5:80')?.url, 'http://10.0.0.5:80')
  assert.equal(parseServer('::1')?.url, 'http://[::1]:4468')
  assert.equal(parseServer('[::1]:9000')?.url, 'http://[::1]:9000')
  assert.equal(parseServer('http://a.local')?.url, 'http://a.local:4468')
  assert.equal(parseServer('http://a.local:80')?.url, 'http://a.local')
  for (const bad of ['', 'a b', 'host:0', 'host:x', '[zz]:1', 'http://a.local/path', 'a..b']) assert.equal(parseServer(bad), undefined, bad)
})

test('files: ./rrcloudrc wins over ~/.rrcloudrc, which wins over /etc/rrcloudrc, key by key', () => {
  const d = mkdtempSync(join(tmpdir(), 'rrcloudrc-'))
  const [here, home, etc] = ['here', 'home', 'etc'].map((n) => join(d, n))
  writeFileSync(here, 'openscad.servers = here.local\n')
  writeFileSync(home, 'servers = home.local\nopenscad.servers = home-scad.local\ntoken = t1\n')
  writeFileSync(etc, 'servers = etc.local\nslic3r.servers = etc-slicer.local\n')
  const rc = readRrcloudrc([here, home, etc, join(d, 'missing')])
  assert.deepEqual(rc.files, [here, home, etc])
  assert.deepEqual(urls(rc.servers), ['http://home.local:4468'])
  assert.deepEqual(urls(rc.services.openscad), ['http://here.local:4468'])
  assert.deepEqual(urls(rc.services.slic3r), ['http://etc-slicer.local:4468'])
  assert.equal(rc.token, 't1')
  rmSync(d, { recursive: true, force: true })
})

test('named nodes: --s, else SERVICE.servers, else servers, else none (the LAN is looked at by src/client/lan.ts)', () => {
  const rc = { ...parseRrcloudrc('servers = a.local,b.local\nslic3r.servers = s.local\n', 'rc'), files: ['rc'] }
  assert.deepEqual(urls(staticServers({ server: 'x:1', rc }).servers('slic3r')), ['http://x:1'])
  const s = staticServers({ rc })
  assert.deepEqual(urls(s.servers('slic3r')), ['http://s.local:4468'])
  assert.deepEqual(urls(s.servers('openscad')), ['http://a.local:4468', 'http://b.local:4468'])
  assert.deepEqual(urls(s.servers()), ['http://a.local:4468', 'http://b.local:4468', 'http://s.local:4468'], 'look-ups ask every node named')
  assert.match(s.origin('slic3r'), /slic3r\.servers in rrcloudrc/)
  const none = staticServers({ rc: { services: {}, files: [] } })
  assert.deepEqual(none.servers('openscad'), [], 'nothing named: no node made up')
  assert.equal(none.origin('openscad'), '')
  assert.ok(!('LOCAL_NODE' in servers), 'the node on this machine is found by the LAN source, not made up here')
  assert.throws(() => staticServers({ server: 'bad host' }), /--s=bad host: not a server/)
})
