import { Command, Flags } from '@oclif/core'
import { availableParallelism, homedir } from 'node:os'
import { join } from 'node:path'
// only what the flags need: the node's modules load in run(), while its mDNS names are probed
import { DEFAULT_CACHE_SIZE, parsePrinterSpec, parseSize, type PrinterSpec } from '../node/options.js'
import { DEFAULT_ALLOW } from '../node/access.js'

/** `HOST`, `HOST:PORT` or `http://HOST:PORT` as a base URL (port 4468 unless given). */
function peerUrl (spec: string): string {
  const s = spec.trim()
  const u = new URL(/^https?:\/\//i.test(s) ? s : `http://${s}`)
  if (!u.port && !/^https?:\/\/[^/]+:\d+/i.test(s)) u.port = '4468'
  return u.origin
}

const defaultDataDir = () => join(process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'rrcloud')

export default class NodeCommand extends Command {
  static summary = 'Run a node: accept tasks over HTTP and run them with the tools installed here.'
  static description = `A node offers every service under services/ whose tool is installed on this machine
(see \`rrcloud meta\` for which, and why not). Tasks run as child processes, at most --slots at
once; the rest wait as queued. Task records survive a restart; files older than --retention are swept.
Stop it with Ctrl-C: running tasks are cancelled and recorded as such, queued ones run at next start.`

  static examples = [
    '<%= config.bin %> node',
    '<%= config.bin %> node --port 4468 --slots 2 --data-dir /var/lib/rrcloud',
    '<%= config.bin %> node --allow 192.168.1.0/24 --token s3cret',
    '<%= config.bin %> node --printer mk3=/dev/ttyUSB0@115200',
    '<%= config.bin %> node --printer mk3a=/dev/ttyUSB0@115200,group=mk3,group=petg',
    '<%= config.bin %> node --cors https://dashboard.example.org,octopi',
    '<%= config.bin %> node --cache-size 10G',
    '<%= config.bin %> node --offer openscad,slic3r --peer pi.local',
  ]

  static flags = {
    port: Flags.integer({ char: 'p', default: 4468, min: 0, max: 65535, description: 'TCP port to listen on (0 picks a free one)' }),
    host: Flags.string({ description: 'address to listen on (default: all)' }),
    'data-dir': Flags.string({ description: 'where task records and files are kept', default: defaultDataDir() }),
    name: Flags.string({ description: 'name shown to clients (default: host name)' }),
    slots: Flags.integer({ min: 1, default: availableParallelism(), description: 'tasks run at once (default: CPU cores)' }),
    timeout: Flags.integer({ min: 1, default: 1800, description: 'seconds a task may run before it is killed' }),
    retention: Flags.integer({ min: 1, default: 24, description: 'hours finished tasks and their files are kept' }),
    allow: Flags.string({ description: 'comma-separated CIDR ranges allowed to connect', default: DEFAULT_ALLOW.join(',') }),
    cors: Flags.string({ description: 'comma-separated origins (http://host:port) or host names whose web pages may use this node, beyond those served from the LAN (addresses in --allow, localhost, *.local); * for any page, null for file:// and sandboxed pages' }),
    token: Flags.string({ description: 'require this token to create or change tasks', env: 'RRCLOUD_TOKEN' }),
    'max-upload': Flags.integer({ min: 1, default: 1024, description: 'MiB of uploads per task (all its files together); beyond, 413' }),
    'cache-size': Flags.string({ default: '2G', description: 'space for the content store and result cache: files uploaded by digest, inputs and outputs, least recently used first out (500M, 2G, or bytes; 0: no store and no cache)' }),
    'max-field': Flags.integer({ min: 1, default: 1, description: 'MiB of a text field (an input sent as a string, held in memory); a request\'s fields together: twice that' }),
    nice: Flags.integer({ min: 0, max: 19, default: 10, description: 'CPU niceness of the tools (0 to 19; 0: same as the node), so that the HTTP API and printer streaming stay responsive while slicers run' }),
    'max-queue': Flags.integer({ min: 0, default: 1000, description: 'tasks that may wait for a slot; beyond, a new task waits up to --queue-wait for a place, then is refused (503) and its client goes to another node' }),
    'queue-wait': Flags.string({ default: '2', description: 'seconds a new task waits, unread, for a place in a full queue before it is refused (503); 0: refused at once' }),
    printer: Flags.string({ multiple: true, description: 'a serial printer attached here: NAME=/dev/ttyUSB0[@BAUD][,park=GCODE;GCODE...][,ahead=N][,group=GROUP...][,autoclear] (repeatable); park is what a pause runs after the moves are done, e.g. "mk3=/dev/ttyUSB0@115200,park=G91;G1 Z10;G90"; ahead=1 sends one line at a time even to firmware with room for more (links that corrupt lines); group=GROUP (repeatable) puts it in a farm group; autoclear: it clears its own bed after a print (see docs/farm.md)' }),
    mdns: Flags.boolean({ default: true, allowNo: true, description: 'advertise this node and browse peers over mDNS (--no-mdns: HTTP only)' }),
    interface: Flags.string({ description: 'network interface (name or IPv4 address) for mDNS, e.g. eth0 on a host with several' }),
    services: Flags.string({ description: 'extra folder of service descriptors (*.conf)', multiple: true }),
    offer: Flags.string({ description: 'offer only these services, comma-separated (of those whose tools are installed here), e.g. openscad,slic3r' }),
    peer: Flags.string({ multiple: true, description: 'another node (HOST[:PORT] or http://HOST:PORT) that pipelines driven here may place stages on, beside the peers heard over mDNS (repeatable)' }),
    sandbox: Flags.string({ options: ['auto', 'bwrap', 'none'], default: 'auto', description: 'how tools are confined: bwrap (each sees only its task folder and the read-only system, no network, as an unprivileged user), auto (bwrap when it works here; otherwise services that run task content as a program, such as openjscad, are not offered), none (tools see the whole machine; see docs/security.md)' }),
    'task-memory': Flags.integer({ min: 0, description: 'memory (data segment) of each tool process, MiB (default: RAM / slots; 0: no limit)' }),
    'task-cpu': Flags.integer({ min: 0, description: 'CPU seconds of each tool process (default: --timeout x cores; 0: no limit)' }),
    'task-file-size': Flags.integer({ min: 0, default: 4096, description: 'largest file a tool may write, MiB (0: no limit)' }),
    'task-procs': Flags.integer({ min: 0, default: 256, description: 'processes and threads of the tools\' user, when the node runs as root (0: no limit)' }),
  }

  async run (): Promise<void> {
    const { flags } = await this.parse(NodeCommand)
    const stamp = () => new Date().toISOString()
    const log = (line: string) => process.stdout.write(`${stamp()} ${line}\n`)
    let cacheSize = DEFAULT_CACHE_SIZE
    try {
      cacheSize = parseSize(flags['cache-size'])
    } catch (e) {
      this.error(`--cache-size ${(e as Error).message}`, { exit: 2 })
    }
    const queueWait = Number(flags['queue-wait'])
    if (!(queueWait >= 0 && queueWait <= 600)) this.error(`--queue-wait ${flags['queue-wait']}: give seconds, 0 to 600 (e.g. 2 or 0.5)`, { exit: 2 })
    let printers: PrinterSpec[]
    try {
      printers = (flags.printer ?? []).map(parsePrinterSpec)
    } catch (e) {
      this.error((e as Error).message, { exit: 2 })
    }
    const { advertiseEarly } = await import('../node/advertising.js')
    const advertising = advertiseEarly({
      mdns: flags.mdns, port: flags.port, dataDir: flags['data-dir'], name: flags.name, interface: flags.interface,
      slots: flags.slots, token: flags.token, printers,
    }, { log })
    let node
    try {
      const { startNode } = await import('../node/node.js')
      node = await startNode({
        advertising,
        port: flags.port,
        host: flags.host,
        dataDir: flags['data-dir'],
        name: flags.name,
        slots: flags.slots,
        timeoutSec: flags.timeout,
        retentionHours: flags.retention,
        allow: flags.allow.split(',').filter(Boolean),
        cors: flags.cors?.split(',').map((s) => s.trim()).filter(Boolean),
        token: flags.token,
        maxUpload: flags['max-upload'] * 2 ** 20,
        maxField: flags['max-field'] * 2 ** 20,
        maxQueue: flags['max-queue'],
        queueWaitMs: queueWait * 1000,
        cacheSize,
        nice: flags.nice,
        serviceDirs: flags.services,
        offer: flags.offer?.split(',').map((x) => x.trim()).filter(Boolean),
        peers: (flags.peer ?? []).map(peerUrl),
        mdns: flags.mdns,
        printers,
        interface: flags.interface,
        sandbox: flags.sandbox as 'auto' | 'bwrap' | 'none',
        limits: {
          ...(flags['task-memory'] !== undefined ? { memoryMiB: flags['task-memory'] } : {}),
          ...(flags['task-cpu'] !== undefined ? { cpuSec: flags['task-cpu'] } : {}),
          fileMiB: flags['task-file-size'],
          procs: flags['task-procs'],
        },
        log,
      })
    } catch (err) {
      await advertising?.abandon()
      const e = err as NodeJS.ErrnoException
      if (e.code === 'EADDRINUSE') this.error(`port ${flags.port} is in use: is a node already running? (rrcloud meta) or pick another with --port`, { exit: 2 })
      this.error(e.message, { exit: 2 })
    }
    const offered = node.services.filter((s) => s.available).map((s) => s.name).join(', ')
    log(`rrcloud node listening on ${node.url.replace('127.0.0.1', flags.host ?? '0.0.0.0')} with ${flags.slots} slot(s), data in ${flags['data-dir']}; services: ${offered}`)
    await new Promise<void>((resolve) => {
      const stop = (sig: string) => {
        log(`${sig}: stopping, cancelling running tasks`)
        node.close().then(() => { log('stopped'); resolve() }, (e) => { log(`error while stopping: ${e}`); resolve() })
      }
      process.once('SIGINT', () => stop('SIGINT'))
      process.once('SIGTERM', () => stop('SIGTERM'))
    })
  }
}
