// The DNS packet codec of bonjour-service's own mDNS layer (bonjour-service → multicast-dns →
// dns-packet), reached through their public entry points: we own the socket and the responder
// (see mdns.ts, responder.ts) and use nobody's private fields. Resolving through the chain keeps
// exactly the codec bonjour-service ships with, hoisted or not.
import { createRequire } from 'node:module'

export interface DnsCodec {
  encode (packet: object): Buffer
  decode (buf: Buffer): any
  /** rdata encoders: a 2-byte length, then the data */
  a: { encode (address: string): Buffer }
  aaaa: { encode (address: string): Buffer }
  srv: { encode (data: { port: number, target: string, priority?: number, weight?: number }): Buffer }
  AUTHORITATIVE_ANSWER: number
}

const here = createRequire(import.meta.url)
const bonjour = createRequire(here.resolve('bonjour-service'))
const multicastDns = createRequire(bonjour.resolve('multicast-dns'))

export const dns = multicastDns('dns-packet') as DnsCodec
