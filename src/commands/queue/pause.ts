import { Flags } from '@oclif/core'
import { ClientCommand } from '../../client/command.js'
import { holdQueues } from '../../client/farm.js'

export default class QueuePause extends ClientCommand {
  static summary = 'Hold the jobs of the farm queue (of one group) on every node: nothing new starts until resume; prints running go on.'
  static enableJsonFlag = true
  static examples = ['<%= config.bin %> queue pause', '<%= config.bin %> queue pause --group mk3']
  static flags = { group: Flags.string({ char: 'g', summary: 'only the jobs for this group', helpValue: 'GROUP' }) }

  async run (): Promise<Array<{ node: string, paused: string[] }>> {
    const { flags } = await this.parse(QueuePause)
    return await holdQueues(this.client(flags), 'pause', flags.group, (line) => this.log(line))
  }
}
