import { Args } from '@oclif/core'
import { ClientCommand } from '../../client/command.js'
import { findJob, type FarmJob } from '../../client/farm.js'

export default class QueueRm extends ClientCommand {
  static summary = 'Remove a job from the farm queue; copies already printing go on (`rrcloud cancel TASK` stops one).'
  static enableJsonFlag = true
  static examples = ['<%= config.bin %> queue rm j1361982308-837500']
  static args = { id: Args.string({ description: 'job id, as `rrcloud queue` shows it', required: true, ignoreStdin: true }) }

  async run (): Promise<FarmJob> {
    const { args, flags } = await this.parse(QueueRm)
    const { api } = await findJob(this.client(flags), args.id)
    const job = await api.remove(args.id)
    this.log(`removed ${job.id} (${job.name}) from the queue of ${job.node}`)
    return job
  }
}
