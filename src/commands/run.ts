import { Args, Command } from '@oclif/core'
import { OPTIONS_HELP } from '../client/usage.js'

/**
 * Help for `rrcloud SERVICE ARGS...`. bin/run.js runs service command lines itself (the tool's
 * own options such as --load= would not get past oclif's flag parser), so this only documents them.
 */
export default class Run extends Command {
  static summary = 'Run a service (openscad, openjscad, slic3r, povray, echo, printrun, ...) on a node: rrcloud SERVICE ARGS...'
  static description = `The task goes to the node of the LAN that will start it soonest among those offering the service (see \`rrcloud peers\`); nodes named with --s or in rrcloudrc join them. A node that cannot take it is skipped for the next; with --wait, a task whose node dies runs once more elsewhere.

Input files named in ARGS are uploaded, with their prefix (such as slic3r's --load=) as prearg. Without --wait it prints the task's id and returns at once: \`rrcloud info ID\` shows its state, \`rrcloud fetch ID\` writes its result. With --wait (or as SERVICE.cloud) it waits, writes the result where ARGS asked (-oFILE, -o FILE, --output=FILE; by default next to the input) and exits with the task's exit status.

${OPTIONS_HELP}`

  static examples = [
    '<%= config.bin %> --s=myserver.local openscad test.scad',
    "<%= config.bin %> '--notifier=http://someserver.local/ping-$id' --s=myserver.local slic3r --load=prusa.conf huge.stl",
    '<%= config.bin %> --wait openscad test.scad -otest.stl',
    '<%= config.bin %> run --s=myserver.local openscad test.scad',
    'openscad.cloud --help',
    '<%= config.bin %> --local openscad test.scad -otest.stl',
    'openscad.cloud test.scad -otest.stl',
    'slic3r.cloud --load=prusa.ini huge.stl --output=huge.gcode',
    '<%= config.bin %> printrun --printer mk3 huge.gcode',
    'printrun.cloud /dev/ttyUSB0 huge.gcode',
  ]

  static strict = false
  static args = { service: Args.string({ description: 'service name', required: true, ignoreStdin: true }) }

  async run (): Promise<void> {
    const { args } = await this.parse(Run)
    this.error(`run it as: rrcloud ${args.service} ARGS...`, { exit: 2 })
  }
}
