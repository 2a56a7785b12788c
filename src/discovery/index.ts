/**
 * Zero-configuration discovery of rrcloud nodes over mDNS/DNS-SD (`_rrcloud._tcp`).
 * The only way into bonjour-service: nothing outside src/discovery imports it.
 *
 * Advertise (a node):
 *   const ad = createAdvertiser({ name: 'box', port: 4468, record, interface: 'eth0' }, { log })
 *   await ad.ready                       // name probed (renamed on conflict) and announced
 *   ad.update({ load: 0.4, free: 1, queue: 2 })   // browsers see it within ~0.5 s, no flapping
 *   await ad.close()                     // goodbye (TTL 0): browsers drop the node at once
 *
 * Browse (a client, `rrcloud peers --watch`):
 *   const b = createBrowser({ interface: 'eth0' })
 *   b.on('up', (peer) => ...); b.on('update', (peer, previous) => ...); b.on('down', (peer, reason) => ...)
 *   b.peers()                            // snapshot: Peer[]
 *   await b.close()
 *
 * One shot (a client about to send a task):
 *   const peers = await discover({ timeoutMs: 400 })   // active query; returns once answers settle (250 ms without a new one), at most 400 ms
 *
 * A Peer is { name, fqdn, host, addresses, port, record, seenAt, ageMs }; `record` is the decoded TXT
 * record (NodeRecord: version, id, name, services, load per core, cores, slots, free, queue,
 * printers, tokenRequired), see record.ts for the keys, the size limits and what is dropped when it
 * does not fit.
 *
 * On the LAN:
 * - instance `<name>-<6 hex digits of the node id>._rrcloud._tcp.local`, SRV target `<host>.local`
 *   with A/AAAA records; both names are probed first and renamed `-2`, `-3`, ... on conflict;
 * - TXT updates go out as unsolicited responses with the cache-flush bit, at most every
 *   `minUpdateIntervalMs` (500 ms), and later queries are answered with the new TXT;
 * - PTR/SRV/TXT have a 4 s TTL: browsers (ours, avahi, ...) re-query at half-life and drop a node
 *   that stopped answering about 4.5 s after its last answer (see browser.ts for why);
 * - `interface` pins one interface (name or IPv4): multicast is joined and sent there and only its
 *   addresses are published. Socket errors are logged through `deps.log` and reject `ready`.
 * Not done: multicast over IPv6 (AAAA records are published, queries go over IPv4), known-answer
 * suppression in the responder, and tie-breaking between simultaneous probes (two nodes probing the
 * same name at once both announce it, then the one whose SRV sorts first renames).
 */
export { createAdvertiser, DEFAULT_TTL_SEC, type Advertiser, type AdvertiserConfig, type AdvertiserDeps, type AdvertiserEvents } from './advertiser.js'
export { createBrowser, discover, type Browser, type BrowserConfig, type BrowserDeps, type BrowserEvents, type DiscoverOptions } from './browser.js'
export type { Peer } from './cache.js'
export { decodeRecord, encodeRecord, RECORD_VERSION, TXT_MAX_BYTES, type NodeRecord, type PrinterInfo } from './record.js'
export { SERVICE_TYPE } from './names.js'
