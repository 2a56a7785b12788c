import { Args } from '@oclif/core'
import { ClientCommand } from '../client/command.js'
import { clearPrinter, type FarmPrinter } from '../client/farm.js'

export default class Clear extends ClientCommand {
  static summary = 'Say that a printer\'s bed is clear: a finished (or failed) printer takes the next job of the farm queue.'
  static description = 'After a print the printer is `finished`: its bed holds the print, and the farm queue sends it nothing until someone has taken the print off and says so with this command. A printer in `error` (a failed print, a halted firmware) is cleared the same way once it has been looked at.'
  static enableJsonFlag = true
  static examples = ['<%= config.bin %> clear mk3a']
  static args = { printer: Args.string({ description: 'printer name (or port path), as `rrcloud printers` shows it', required: true, ignoreStdin: true }) }

  async run (): Promise<FarmPrinter> {
    const { args, flags } = await this.parse(Clear)
    const p = await clearPrinter(this.client(flags), args.printer)
    this.log(`${p.name} on ${p.node}: ${p.state}`)
    return p
  }
}
