import { Flags } from '@oclif/core'
import { ClientCommand } from '../../client/command.js'
import { holdQueues } from '../../client/farm.js'

export default class QueueResume extends ClientCommand {
  static summary = 'Let the jobs of the farm queue (of one group) start again on every node.'
  static enableJsonFlag = true
  static examples = ['<%= config.bin %> queue resume', '<%= config.bin %> queue resume --group mk3']
  static flags = { group: Flags.string({ char: 'g', summary: 'only the jobs for this group', helpValue: 'GROUP' }) }

  async run (): Promise<Array<{ node: string, paused: string[] }>> {
    const { flags } = await this.parse(QueueResume)
    return await holdQueues(this.client(flags), 'resume', flags.group, (line) => this.log(line))
  }
}
