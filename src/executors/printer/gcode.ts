import { createReadStream } from 'node:fs'

/**
 * Strips `;` comments and `( … )` comments the way Marlin's serial reader does (left to right,
 * `;` ends the line, `(` starts a comment that `)` closes) and trims the result.
 * An empty string means there is nothing to send.
 */
export function cleanLine (raw: string): string {
  let out = ''
  let paren = false
  for (const ch of raw) {
    if (paren) {
      if (ch === ')') paren = false
    } else if (ch === ';') break
    else if (ch === '(') paren = true
    else out += ch
  }
  return out.trim()
}

// `;@pause` (and OctoPrint's `@pause`): the print pauses here, as if paused by hand
const AT_PAUSE = /^\s*;?\s*@pause\b/i
// `N123 G1 X1*45`: a line number and checksum written into the file; the host numbers lines itself
const OWN_NUMBER = /^N\d+\s*(.*?)(?:\*\d*)?$/

/**
 * The command a file line asks for: comments stripped, a line number and checksum of the file's
 * own removed; `@pause` for a pause request. An empty string means there is nothing to send.
 */
export function fileCommand (raw: string): string {
  if (AT_PAUSE.test(raw)) return '@pause'
  const command = cleanLine(raw)
  const own = OWN_NUMBER.exec(command)
  return own ? own[1].trim() : command
}

/** XOR of every byte before the `*`, as Marlin checks it and printcore computes it. */
export function checksum (text: string): number {
  let cs = 0
  const bytes = Buffer.from(text, 'utf8')
  for (let i = 0; i < bytes.length; i++) cs ^= bytes[i]
  return cs
}

/** `N<n> <command>*<checksum>`: one line of the numbered protocol, without the newline. */
export function numberedLine (n: number, command: string): string {
  const body = `N${n} ${command}`
  return `${body}*${checksum(body)}`
}

export interface GcodeCommand {
  /** the cleaned command, never empty */
  command: string
  /** 1-based line number in the source file */
  sourceLine: number
  /** byte offset just past this source line: how much of the file has been consumed */
  endOffset: number
}

const NL = 0x0a

/**
 * Reads a G-code file as a stream and yields its commands (fileCommand) one by one; comment and
 * blank lines are skipped. Only one chunk of the file is held in memory at a time.
 */
export async function * readGcode (path: string, opts: { highWaterMark?: number } = {}): AsyncGenerator<GcodeCommand> {
  let carry: Buffer = Buffer.alloc(0)
  let offset = 0 // file offset of carry[0]
  let sourceLine = 0
  for await (const chunk of createReadStream(path, { highWaterMark: opts.highWaterMark ?? 64 * 1024 })) {
    const buf: Buffer = carry.length > 0 ? Buffer.concat([carry, chunk as Buffer]) : chunk as Buffer
    let start = 0
    for (let nl = buf.indexOf(NL, start); nl !== -1; nl = buf.indexOf(NL, start)) {
      sourceLine++
      const command = fileCommand(buf.toString('utf8', start, nl))
      start = nl + 1
      if (command) yield { command, sourceLine, endOffset: offset + start }
    }
    carry = buf.subarray(start)
    offset += start
  }
  if (carry.length > 0) {
    const command = fileCommand(carry.toString('utf8'))
    if (command) yield { command, sourceLine: sourceLine + 1, endOffset: offset + carry.length }
  }
}
