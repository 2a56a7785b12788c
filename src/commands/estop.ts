import { Args } from '@oclif/core'
import { ClientCommand } from '../client/command.js'
import { ClientError, EXIT } from '../client/errors.js'
import { formatRecord } from '../client/format.js'
import { everyNode } from '../client/lookup.js'

interface MetaPrinter { name: string; port: string; state?: string }

export default class Estop extends ClientCommand {
  static summary = 'Emergency stop: send M112 to a printer at once (the print fails; the printer needs a reset).'
  static description = `Asks the node the printer is attached to for M112, written to the serial port at once,
ahead of anything waiting. Marlin then halts: heaters and motors off, until its reset button is
pressed or it is powered off and on (the node reconnects by itself). For a normal stop use
\`rrcloud cancel ID\`, which turns heaters, fan and motors off and keeps the printer usable.`

  static enableJsonFlag = true
  static examples = ['<%= config.bin %> estop mk3', '<%= config.bin %> --s=raspberrypi.local estop /dev/ttyUSB0']
  static args = { printer: Args.string({ description: 'printer name or port path, as `rrcloud peers` shows it', required: true, ignoreStdin: true }) }

  async run (): Promise<Record<string, unknown>> {
    const { args, flags } = await this.parse(Estop)
    const { answers } = await everyNode(this.client(flags), async (api) => ({ api, meta: await api.meta() }))
    const holders = answers.filter(({ value }) =>
      ((value.meta.printers ?? []) as MetaPrinter[]).some((p) => p.name === args.printer || p.port === args.printer))
    if (holders.length === 0) {
      const known = answers.flatMap(({ value }) => ((value.meta.printers ?? []) as MetaPrinter[]).map((p) => `${p.name} (${value.meta.serverName})`))
      throw new ClientError(`no printer ${args.printer} on the LAN; ${known.length ? `there are: ${known.join(', ')}` : 'no node has a printer'} (see \`rrcloud peers\`)`, EXIT.failed)
    }
    // a name on several nodes: each of them is stopped, nothing is left running by a wrong guess
    const results = await Promise.all(holders.map(({ api }) => api.estop(args.printer).then((r) => ({ node: api.server.url, ...r }))))
    for (const r of results) this.log(formatRecord(r).trimEnd())
    return results.length === 1 ? results[0] : { stopped: results }
  }
}
