import { Command } from '@oclif/core'
import { pipe } from '../client/pipe.js'
import { ClientError } from '../client/errors.js'

/**
 * `rrcloud pipe SERVICE ARGS... -- SERVICE ARGS... -- ...`. The stages' arguments are the tools'
 * (`--load=prusa.ini`, `-o out.stl`), which oclif's flag parser would not let through: the
 * command reads its argv itself.
 */
export default class Pipe extends Command {
  static summary = 'Run services one after the other as one pipeline, each stage on the best node, outputs passed node to node.'
  static usage = 'pipe [--async] [-o FILE] [OPTIONS] SERVICE ARGS... -- SERVICE ARGS... [-- ...]'
  static description = `Stages are separated by --. Each takes the arguments its SERVICE.cloud takes, and the previous stage's output as its main input: later stages name only their other inputs (slic3r's --load=CONFIG). One node drives the pipeline (the node on this machine, else the one the scheduler would choose): it places each stage on the node that will run it soonest (cache hits and where the data is first; a print on its printer's node) and passes each output to the next stage's node by its digest, never through this machine. A stage whose node dies runs once more elsewhere; the driving node resumes its pipelines after a restart.

Synchronous by default: shows stage n/N, service, node, state and percent, then writes the last stage's output (next to the model, with its extension, as SERVICE.cloud does; -o FILE before the first stage to choose) and any stage's output given -o FILE within that stage. --async prints id: ID and returns at once; \`rrcloud info ID\`, \`rrcloud log ID\`, \`rrcloud cancel ID\` and \`rrcloud fetch ID\` take pipeline ids as they take task ids.

Options before the first stage: --async, -o FILE, --s=HOST[:PORT], --token=TOKEN, --interface=IF, --notifier=URL ($id: the pipeline's id), --with=PATH, --no-cache, --json. Within a stage: --printer=NAME (printrun), --with=PATH, -o FILE.`

  static examples = [
    '<%= config.bin %> pipe openscad part.scad -- slic3r --load=prusa.ini -- printrun --printer mk3',
    '<%= config.bin %> pipe openscad part.scad -o part.stl -- slic3r --load=prusa.ini',
    '<%= config.bin %> pipe -o part.gcode openscad part.scad -- slic3r --load=prusa.ini',
    '<%= config.bin %> pipe --async openscad part.scad -- slic3r --load=prusa.ini -- printrun --printer mk3',
  ]

  static strict = false

  async run (): Promise<void> {
    try {
      process.exitCode = await pipe(this.argv)
    } catch (err) {
      if (!(err instanceof ClientError)) throw err
      process.stderr.write(`rrcloud: ${err.message}\n`)
      process.exitCode = err.exit
    }
  }
}
