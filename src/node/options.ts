// What `rrcloud node`'s flags say, parsed: sizes and printers. Light on purpose: the command reads
// its flags before the node's modules load.
import { basename } from 'node:path'
import { PRINTER_NAME } from '../farm/names.js'

/** --cache-size by default: 2 GiB */
export const DEFAULT_CACHE_SIZE = 2 * 2 ** 30

/** A size as people write it: `2G`, `500M`, `64k`, `1.5GiB`, or bytes (`1048576`); units are powers of 1024. */
export function parseSize (text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])(?:i?b)?|b)?\s*$/i.exec(text)
  if (!m) throw new Error(`${text} is not a size: write bytes, or a number with K, M, G or T (powers of 1024), e.g. 500M or 2G`)
  const unit = m[2] ? 1024 ** ('kmgt'.indexOf(m[2].toLowerCase()) + 1) : 1
  return Math.floor(Number(m[1]) * unit)
}

export interface PrinterSpec {
  name: string; path: string; baudRate?: number; park?: string[]; ahead?: number
  /** farm groups the printer belongs to (`group=mk3`, repeatable) */
  groups?: string[]
  /** the printer clears its own bed (a belt or an ejector): after a print it is ready again at once */
  autoclear?: boolean
}

/**
 * `mk3=/dev/ttyUSB0@115200`, `/dev/ttyACM0` (named after the device), `mk3=/dev/ttyUSB0`, and
 * options after a comma: `mk3=/dev/ttyUSB0@115200,park=G91;G1 Z10;G90` (G-code a pause runs,
 * commands separated by `;`), `group=mk3` (repeatable), `autoclear`, `ahead=N`.
 */
export function parsePrinterSpec (spec: string): PrinterSpec {
  const [port, ...options] = spec.trim().split(',')
  const m = /^(?:([A-Za-z0-9][\w.-]{0,31})=)?(\/[^@\s]+)(?:@(\d{3,7}))?$/.exec(port)
  if (!m) throw new Error(`--printer ${spec}: write NAME=/dev/ttyUSB0[@BAUD][,park=GCODE;GCODE...][,group=GROUP][,autoclear], e.g. mk3=/dev/ttyUSB0@115200`)
  const p: PrinterSpec = { name: m[1] ?? basename(m[2]), path: m[2], baudRate: m[3] ? Number(m[3]) : undefined }
  for (const option of options) {
    const [key, ...rest] = option.split('=')
    const value = rest.join('=')
    if (key.trim() === 'park' && value) p.park = value.split(';').map((c) => c.trim()).filter(Boolean)
    else if (key.trim() === 'ahead' && /^[1-9]\d{0,2}$/.test(value)) p.ahead = Number(value)
    else if (key.trim() === 'group' && PRINTER_NAME.test(value.trim())) {
      p.groups = [...new Set([...p.groups ?? [], value.trim()])]
    } else if (option.trim() === 'autoclear') p.autoclear = true
    else {
      throw new Error(`--printer ${spec}: unknown option "${option}"; options are park=GCODE;GCODE..., ahead=N (lines sent ahead of their ok, 1: none), ` +
        'group=NAME (a farm group: letters, digits, _ . -; repeatable) and autoclear (the printer clears its own bed)')
    }
  }
  return p
}
