import { Args, Flags } from '@oclif/core'
import { ClientCommand } from '../client/command.js'
import { queuePrint, jobTarget, type FarmJob } from '../client/farm.js'
import { createReporter } from '../client/progress.js'
import { usage } from '../client/errors.js'

export default class Print extends ClientCommand {
  static summary = 'Queue a G-code file for the next free printer of a group (or for one printer), in as many copies as asked.'
  static description = `The job goes to the farm queue of a node that has printers of the group (this machine's node when it has), which keeps it, with its file, across restarts and sends each copy to the first printer of the group that is idle, on any node of the LAN. A printer that has printed is \`finished\` until \`rrcloud clear PRINTER\` (unless it has autoclear); a copy whose print fails is not printed again: its printer is in \`error\` until cleared.

\`rrcloud queue\` lists the jobs; \`rrcloud printers\` the printers.`
  static enableJsonFlag = true
  static examples = [
    '<%= config.bin %> print --group mk3 part.gcode',
    '<%= config.bin %> print --group mk3 --copies 4 part.gcode',
    '<%= config.bin %> print --printer mk3a part.gcode',
  ]

  static flags = {
    group: Flags.string({ char: 'g', summary: 'the farm group: the first free printer of it takes each copy', helpValue: 'GROUP', exclusive: ['printer'] }),
    printer: Flags.string({ char: 'p', summary: 'one printer, by name', helpValue: 'NAME', exclusive: ['group'] }),
    copies: Flags.integer({ char: 'n', summary: 'how many copies', default: 1, min: 1, max: 1000 }),
  }

  static args = { file: Args.string({ description: 'the G-code file', required: true, ignoreStdin: true }) }

  async run (): Promise<FarmJob> {
    const { args, flags } = await this.parse(Print)
    if (!flags.group && !flags.printer) throw usage('say where: --group GROUP (the first free printer of the group) or --printer NAME')
    const progress = createReporter()
    const job = await queuePrint(this.client(flags), args.file, { group: flags.group, printer: flags.printer }, flags.copies,
      progress.enabled ? (p) => progress.bytes(`uploading ${args.file}`, p) : undefined)
    progress.done()
    this.log(`job: ${job.id}\nnode: ${job.node}\nfor: ${jobTarget(job)}\ncopies: ${job.copies.length}\nposition: ${job.position}`)
    return job
  }
}
