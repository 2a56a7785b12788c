import { Args } from '@oclif/core'
import type { TaskView } from '../client/api.js'
import { ClientCommand } from '../client/command.js'
import { changeTask } from '../client/tasks.js'

export default class Resume extends ClientCommand {
  static summary = 'Resume a paused task.'
  static enableJsonFlag = true
  static examples = ['<%= config.bin %> resume 1361982308-837500']
  static args = { id: Args.string({ description: 'task id', required: true, ignoreStdin: true }) }

  async run (): Promise<TaskView> {
    const { args, flags } = await this.parse(Resume)
    const task = await changeTask(this.client(flags), args.id, 'resume')
    this.log(`id: ${task.id}\nstatus: ${task.status}`)
    return task
  }
}
