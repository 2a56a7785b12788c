import { Args } from '@oclif/core'
import type { TaskView } from '../client/api.js'
import { ClientCommand } from '../client/command.js'
import { changeTask } from '../client/tasks.js'

export default class Cancel extends ClientCommand {
  static summary = 'Cancel a queued or running task (its tool is stopped: SIGINT, then SIGTERM, then SIGKILL).'
  static enableJsonFlag = true
  static examples = ['<%= config.bin %> cancel 1361982308-837500']
  static args = { id: Args.string({ description: 'task id', required: true, ignoreStdin: true }) }

  async run (): Promise<TaskView> {
    const { args, flags } = await this.parse(Cancel)
    const task = await changeTask(this.client(flags), args.id, 'cancel')
    this.log(`id: ${task.id}\nstatus: ${task.status}`)
    return task
  }
}
