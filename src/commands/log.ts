import { Args } from '@oclif/core'
import { ClientCommand } from '../client/command.js'
import { findTask } from '../client/lookup.js'
import { pipelineLog, PIPELINE_ID } from '../client/pipelines.js'

export default class Log extends ClientCommand {
  static summary = "Print a task's log: what its tool wrote to stdout and stderr."
  static enableJsonFlag = true
  static examples = ['<%= config.bin %> log 1361982308-837500']
  static args = { id: Args.string({ description: 'task id, or pipeline id (every stage\'s log)', required: true, ignoreStdin: true }) }

  async run (): Promise<{ id: string; log: string }> {
    const { args, flags } = await this.parse(Log)
    if (PIPELINE_ID.test(args.id)) {
      const log = await pipelineLog(this.client(flags), args.id)
      if (!this.jsonEnabled()) process.stdout.write(log)
      return { id: args.id, log }
    }
    const { api } = await findTask(this.client(flags), args.id)
    const log = await api.log(args.id)
    if (!this.jsonEnabled()) process.stdout.write(log)
    return { id: args.id, log }
  }
}
