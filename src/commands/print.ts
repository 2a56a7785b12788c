import { Args, Flags } from '@oclif/core'
import { basename, dirname, extname, join } from 'node:path'
import { ClientCommand } from '../client/command.js'
import { queuePrint, jobTarget, type FarmJob } from '../client/farm.js'
import { createReporter } from '../client/progress.js'
import { usage } from '../client/errors.js'

const GCODE = /\.(gcode|gco|g|nc)$/i

export default class Print extends ClientCommand {
  static summary = 'Print a model, an STL or G-code: on one printer, or on the next free printer of a group, in as many copies as asked.'
  static description = `G-code goes to the farm queue of a node that has printers of the group (this machine's node when it has), which keeps it, with its file, across restarts and sends each copy to the first printer of the group that is idle, on any node of the LAN. A printer that has printed is \`finished\` until \`rrcloud clear PRINTER\` (unless it has autoclear); a copy whose print fails is not printed again: its printer is in \`error\` until cleared.

A model (.scad, .jscad) is rendered, then sliced with --slice CONFIG, then printed; an STL starts at slicing. On one printer (--printer, one copy) this is one pipeline that a node drives to the end (\`rrcloud pipe\`): each stage on the best node, the STL and the G-code passed from node to node, and this command may be interrupted once it has said the pipeline's id. For a group, or several copies, the model is rendered and sliced as a pipeline, its G-code written next to the model, then queued for the group.

\`rrcloud queue\` lists the jobs; \`rrcloud printers\` the printers.`
  static enableJsonFlag = true
  static examples = [
    '<%= config.bin %> print --group mk3 part.gcode',
    '<%= config.bin %> print --group mk3 --copies 4 part.gcode',
    '<%= config.bin %> print --printer mk3a part.gcode',
    '<%= config.bin %> print part.scad --slice prusa.ini --printer mk3a',
    '<%= config.bin %> print part.stl --slice prusa.ini --group mk3 --copies 2',
  ]

  static flags = {
    group: Flags.string({ char: 'g', summary: 'the farm group: the first free printer of it takes each copy', helpValue: 'GROUP', exclusive: ['printer'] }),
    printer: Flags.string({ char: 'p', summary: 'one printer, by name', helpValue: 'NAME', exclusive: ['group'] }),
    copies: Flags.integer({ char: 'n', summary: 'how many copies', default: 1, min: 1, max: 1000 }),
    slice: Flags.string({ summary: 'slicer config for a model or an STL (slic3r --load=)', helpValue: 'CONFIG.ini' }),
    with: Flags.string({ summary: 'a file or folder the model reads that its references do not name; repeatable', helpValue: 'PATH', multiple: true }),
    'no-cache': Flags.boolean({ summary: 'render and slice even when a node holds the result' }),
  }

  static args = { file: Args.string({ description: 'the model (.scad, .jscad), STL or G-code file', required: true, ignoreStdin: true }) }

  async run (): Promise<FarmJob | undefined> {
    const { args, flags } = await this.parse(Print)
    let file = args.file
    if (!GCODE.test(file)) {
      const { runPipeline, stagesFor } = await import('../client/pipe.js')
      const opts = { server: flags.s, token: flags.token, interface: flags.interface, with: flags.with ?? [], noCache: flags['no-cache'] }
      if (!flags.group && flags.copies === 1) {
        // the whole way as one pipeline, printed on that printer's node (or the LAN's only printer)
        const code = await runPipeline(stagesFor(file, { slice: flags.slice, printer: flags.printer }), opts)
        if (code) this.exit(code)
        return undefined
      }
      if (!flags.group && !flags.printer) throw usage('say where the copies go: --group GROUP (the first free printer of the group) or --printer NAME')
      // rendered and sliced as a pipeline; the G-code comes here, then goes to the farm queue
      const gcode = join(dirname(file), basename(file, extname(file)) + '.gcode')
      const code = await runPipeline(stagesFor(file, { slice: flags.slice }).slice(0, -1), { ...opts, output: gcode })
      if (code) this.exit(code)
      file = gcode
    }
    if (!flags.group && !flags.printer) throw usage('say where: --group GROUP (the first free printer of the group) or --printer NAME')
    const progress = createReporter()
    const job = await queuePrint(this.client(flags), file, { group: flags.group, printer: flags.printer }, flags.copies,
      progress.enabled ? (p) => progress.bytes(`uploading ${file}`, p) : undefined)
    progress.done()
    this.log(`job: ${job.id}\nnode: ${job.node}\nfor: ${jobTarget(job)}\ncopies: ${job.copies.length}\nposition: ${job.position}`)
    return job
  }
}
