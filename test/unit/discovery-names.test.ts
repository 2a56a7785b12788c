import { test } from 'node:test'
import assert from 'node:assert/strict'
import { findConflicts, compareRecordSets, hostLabel, instanceLabel, shortId, withSuffix, type Claim } from '../../src/discovery/names.js'

test('host labels are one lower-case DNS label', () => {
  assert.equal(hostLabel('Printer-Pi.example.com'), 'printer-pi')
  assert.equal(hostLabel('my_box 2'), 'my-box-2')
  assert.equal(hostLabel('---'), 'rrcloud')
  assert.equal(hostLabel('x'.repeat(80)).length, 63)
})

test('instance labels are <name>-<6 hex of the id>, dot-free and at most 63 bytes', () => {
  const label = instanceLabel('box.lan', 'node-id-1')
  assert.equal(label, `box-lan-${shortId('node-id-1')}`)
  assert.match(shortId('node-id-1'), /^[0-9a-f]{6}$/)
  assert.notEqual(shortId('1795867666-884502'), shortId('1795867666-884503'), 'ids that share a prefix still differ')
  const long = instanceLabel('ö'.repeat(60), 'id')
  assert.ok(Buffer.byteLength(long) <= 60, 'room is left for a -N suffix')
  assert.ok(Buffer.byteLength(withSuffix(long, 12)) <= 63)
  assert.equal(withSuffix('box', 1), 'box')
  assert.equal(withSuffix('box', 2), 'box-2')
})

const claim: Claim = {
  fqdn: 'box-abc123._rrcloud._tcp.local',
  srv: { port: 4468, target: 'pi.local' },
  host: 'pi.local',
  addresses: ['10.77.0.2'],
  local: new Set(['10.77.0.2', 'fe80::1']),
}
const srv = (port: number, target: string, ttl = 4) => ({ name: 'Box-ABC123._rrcloud._tcp.local', type: 'SRV', ttl, data: { port, target } })
const a = (data: string, ttl = 120) => ({ name: 'PI.local', type: 'A', ttl, data })

test('our own records (or identical ones) are no conflict', () => {
  const c = findConflicts([srv(4468, 'PI.local'), a('10.77.0.2'), { name: claim.fqdn, type: 'TXT', ttl: 4, data: [] }], claim)
  assert.equal(c.instance, false)
  assert.equal(c.host, false)
})

test('an SRV for our instance pointing elsewhere is a conflict, decided the same way on both sides', () => {
  const c = findConflicts([srv(4469, 'pi.local')], claim)
  assert.equal(c.instance, true)
  assert.equal(c.instanceWeWin, false, 'the rival sorts after us: we rename')
  const rival: Claim = { ...claim, srv: { port: 4469, target: 'pi.local' } }
  const back = findConflicts([srv(4468, 'pi.local')], rival)
  assert.equal(back.instance, true)
  assert.equal(back.instanceWeWin, true, 'the rival keeps its name')
})

test('an address for our host name that is not one of ours is a host conflict; goodbyes are none', () => {
  assert.equal(findConflicts([a('10.77.0.9')], claim).host, true)
  assert.equal(findConflicts([{ name: 'pi.local', type: 'AAAA', ttl: 120, data: 'fe80::1' }], claim).host, false)
  assert.equal(findConflicts([a('10.77.0.9', 0), srv(1, 'x.local', 0)], claim).host, false)
  assert.equal(findConflicts([srv(1, 'x.local', 0)], claim).instance, false)
  assert.equal(findConflicts([a('10.77.0.9')], { ...claim, host: 'other.local' }).host, false)
})

test('two hosts of one name, each with several addresses: exactly one wins, whichever side compares (RFC 6762 §8.2)', () => {
  // the string comparison used before made both lose here ('10.77.0.3' > '10.77.0.102,...' and
  // '10.77.0.2' > '10.77.0.103,...')
  const pi = (addresses: string[]): Claim => ({ ...claim, host: 'raspberrypi.local', addresses, local: new Set(addresses) })
  const rec = (data: string) => ({ name: 'raspberrypi.local', type: data.includes(':') ? 'AAAA' : 'A', ttl: 120, data })
  const cases: Array<[string[], string[]]> = [
    [['10.77.0.2', '10.77.0.102'], ['10.77.0.3', '10.77.0.103']],
    [['10.77.0.9', '10.77.0.10'], ['10.77.0.10', '10.77.0.2']],
    [['192.168.1.20', 'fd00::20'], ['192.168.1.20', 'fd00::21']],
  ]
  for (const [one, two] of cases) {
    const a1 = findConflicts(two.map(rec), pi(one))
    const a2 = findConflicts(one.map(rec), pi(two))
    assert.equal(a1.host, true, `${one} vs ${two}`)
    assert.equal(a2.host, true, `${two} vs ${one}`)
    assert.notEqual(a1.hostWeWin, a2.hostWeWin, `${one} vs ${two}: exactly one keeps the name`)
  }
  // A (type 1) sorts before AAAA (type 28): records are compared by type before data
  assert.equal(findConflicts([rec('fd00::1')], pi(['10.0.0.1'])).hostWeWin, false)
  assert.equal(compareRecordSets([Buffer.from([1, 2])], [Buffer.from([1, 2])]), 0)
  // equal as far as the shorter goes: the longer set is the later one
  assert.ok(compareRecordSets([Buffer.from([1]), Buffer.from([2])], [Buffer.from([1])]) > 0)
  // the same addresses in another order are the same set: no conflict
  assert.equal(findConflicts(['10.0.0.2', '10.0.0.1'].map(rec), { ...pi(['10.0.0.1', '10.0.0.2']), local: new Set() }).host, false)
})
