/**
 * Zero-configuration discovery of rrcloud nodes over mDNS/DNS-SD (`_rrcloud._tcp`).
 * The only user of bonjour-service's mDNS layer (its packet codec, see codec.ts): nothing outside
 * src/discovery imports it.
 *
 * Advertise (a node):
 *   const ad = createAdvertiser({ name: 'box', port: 4468, record, interface: 'eth0' }, { log })
 *   await ad.ready                       // name probed (renamed on conflict) and announced
 *   ad.update({ load: 0.4, free: 1, queue: 2 })   // browsers that hold the record see it at once, or within 1 s of the previous change; no flapping
 *   await ad.close()                     // goodbye (TTL 0): browsers drop the node at once
 *
 * Browse (a client, `rrcloud peers --watch`):
 *   const b = createBrowser({ interface: 'eth0' })
 *   b.on('up', (peer) => ...); b.on('update', (peer, previous) => ...); b.on('down', (peer, reason) => ...)
 *   b.peers()                            // snapshot: Peer[]
 *   await b.close()
 *
 * On demand (a node: browses while something uses the view, and a minute after):
 *   const b = createOnDemandBrowser({ interface: 'eth0', idleMs: 60_000 })
 *   b.peers()                            // what is known now; starts browsing if it was not
 *   await b.settled()                    // the peers once the LAN has answered (≤ 1 s when it was not browsing)
 *   const release = b.hold(); ...; release()   // browse while an events stream shows peers
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
 *   `minUpdateIntervalMs` (1 s; the first change after a quiet second at once), and only while
 *   someone on the LAN asked for `_rrcloud._tcp` or our names within the TTL (a browser that holds
 *   the record asks every TTL/2; with nobody asking, nobody holds it); queries are answered with the
 *   new TXT at once;
 * - PTR/SRV/TXT have a 4 s TTL: browsers (ours, avahi, ...) re-query at half-life and drop a node
 *   that stopped answering about 4.5 s after its last answer (see browser.ts for why);
 * - multicast is joined and sent on every interface that is up and can carry it (looked at again
 *   every 5 s), naming the interface for each send, so a LAN without a default route (link-local
 *   addresses, an isolated switch) works; when no interface can carry multicast, or every send
 *   fails, it is logged once and `advertiser.status()` says why (the node's `meta` shows it);
 * - `interface` pins one interface (name or IPv4): multicast is joined and sent there and only its
 *   addresses are published. A socket that cannot bind rejects `ready`; other errors go to `deps.log`;
 * - the responder (responder.ts) answers from our own records, with known-answer suppression, and
 *   answers legacy unicast queries (from a port other than 5353, as `dig -p 5353` sends) by unicast
 *   with the query's id and TTLs of at most 10 s (RFC 6762 §6.7);
 * - name conflicts follow RFC 6762 §8.2: a prober compares its proposed records with a rival
 *   prober's (sorted, class, type, then raw rdata) and the lexicographically earlier set takes
 *   another name at once, so two hosts both called `raspberrypi`, each with several addresses, end
 *   with two distinct names; after announcing, the same comparison decides who defends the name.
 * - `services` publishes more DNS-SD services of the node beside `_rrcloud._tcp` (the farm's
 *   `_octoprint._tcp` printers and groups), on the same host name and port, probed and defended
 *   like the node's own instance;
 * Not done: multicast over IPv6 (AAAA records are published, queries go over IPv4).
 */
export { createAdvertiser, DEFAULT_TTL_SEC, type Advertiser, type AdvertiserConfig, type AdvertiserDeps, type AdvertiserEvents, type ServiceInstance } from './advertiser.js'
export { createBrowser, discover, type Browser, type BrowserConfig, type BrowserDeps, type BrowserEvents, type DiscoverOptions } from './browser.js'
export { createOnDemandBrowser, type OnDemandBrowser, type OnDemandConfig, type OnDemandDeps } from './on-demand.js'
export type { Peer } from './cache.js'
export { decodeRecord, encodeRecord, RECORD_VERSION, TXT_MAX_BYTES, type NodeRecord, type PrinterInfo } from './record.js'
export { SERVICE_TYPE } from './names.js'
export type { MdnsStatus } from './mdns.js'
