import { Args, Flags } from '@oclif/core'
import { ClientCommand } from '../../client/command.js'
import { findJob, type FarmJob } from '../../client/farm.js'
import { queueTable } from './index.js'

export default class QueueMove extends ClientCommand {
  static summary = 'Move a job to another place in its node\'s queue (1: next to print).'
  static enableJsonFlag = true
  static examples = ['<%= config.bin %> queue move j1361982308-837500 --to 1']
  static args = { id: Args.string({ description: 'job id, as `rrcloud queue` shows it', required: true, ignoreStdin: true }) }
  static flags = { to: Flags.integer({ summary: 'the new position', required: true, min: 1, helpValue: 'N' }) }

  async run (): Promise<FarmJob[]> {
    const { args, flags } = await this.parse(QueueMove)
    const { api } = await findJob(this.client(flags), args.id)
    const jobs = await api.move(args.id, flags.to)
    if (!flags.json) process.stdout.write(queueTable(jobs))
    return jobs
  }
}
