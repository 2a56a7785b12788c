import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import debug from 'debug'

const log = debug('rrcloud:printer:serial')

/** A line-oriented connection to a printer: what the protocol code needs from a serial port. */
export interface Link {
  /** writes one line; the newline is added */
  write (line: string): void
  /** closes the port; resolves once it is closed, harmless when already closed */
  close (): Promise<void>
}

export interface LinkOptions {
  path: string
  baudRate: number
  /** every complete line from the firmware, without its line ending */
  onLine (line: string): void
  /** the port closed on its own (unplugged, hung up); not called for close() */
  onClose (reason: string): void
}

export type OpenLink = (opts: LinkOptions) => Promise<Link>

/** serialport and its native binding load on first use: a node without printers never needs them */
const serialport = async (): Promise<typeof import('serialport')> => await import('serialport')

/** Opens a serial port with serialport and splits what arrives into lines. */
export const openSerialLink: OpenLink = async (opts) => {
  const { SerialPort } = await serialport()
  const port = new SerialPort({ path: opts.path, baudRate: opts.baudRate, autoOpen: false })
  let closing = false
  let rest = ''
  port.on('data', (chunk: Buffer) => {
    // latin1: a noisy line must not turn into replacement characters that hide the ASCII around them
    const lines = (rest + chunk.toString('latin1')).split('\n')
    rest = lines.pop() ?? ''
    for (const line of lines) opts.onLine(line.endsWith('\r') ? line.slice(0, -1) : line)
  })
  port.on('error', (err) => log('%s: %s', opts.path, err.message))
  port.on('close', (err?: Error & { disconnected?: boolean }) => {
    if (closing) return
    closing = true
    log('%s closed: %s', opts.path, err?.message ?? 'no reason given')
    opts.onClose(err?.disconnected ? 'the serial port was disconnected' : `the serial port closed${err ? ': ' + err.message : ''}`)
  })
  await new Promise<void>((resolve, reject) => port.open((err) => err ? reject(err) : resolve()))
  log('opened %s at %d baud', opts.path, opts.baudRate)
  return {
    write (line) {
      if (!closing) port.write(line + '\n')
    },
    async close () {
      if (closing) return
      closing = true
      if (!port.isOpen) return
      // what was just written (the safety commands, M112) goes out before the port closes; a
      // port that cannot take it within a second is closed all the same
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000)
        port.drain(() => { clearTimeout(timer); resolve() })
      })
      await new Promise<void>((resolve) => port.close(() => resolve()))
    },
  }
}

export interface SerialPortInfo {
  path: string
  manufacturer?: string
  serialNumber?: string
  vendorId?: string
  productId?: string
}

export interface ListOptions {
  /** the system's listing; serialport's by default */
  list?: () => Promise<SerialPortInfo[]>
  /** where to look for ports when there is no udev (/dev) */
  devDir?: string
}

// USB serial adapters, USB CDC boards (most printers), the Raspberry Pi's own UART
const PORT_NAME = /^tty(USB|ACM|AMA)\d+$/

/**
 * The serial ports the system knows of. serialport lists them through udev (`udevadm`); where
 * there is none (containers, minimal images) the device folder is read instead. Any other
 * failure is the caller's to see.
 */
export async function listSerialPorts (o: ListOptions = {}): Promise<SerialPortInfo[]> {
  const list = o.list ?? (async () => {
    const { SerialPort } = await serialport()
    return await SerialPort.list()
  })
  try {
    const ports = await list()
    return ports.map(({ path, manufacturer, serialNumber, vendorId, productId }) =>
      ({ path, manufacturer, serialNumber, vendorId, productId }))
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { path?: string }
    if (e.code !== 'ENOENT' || !/udevadm/.test(`${e.path ?? ''} ${e.message}`)) throw err
    log('no udev (%s): looking for ports in the device folder', e.message)
    const dir = o.devDir ?? '/dev'
    const names = await readdir(dir).catch(() => [] as string[])
    return names.filter((n) => PORT_NAME.test(n)).sort().map((n) => ({ path: join(dir, n) }))
  }
}
