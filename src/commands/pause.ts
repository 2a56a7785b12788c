import { Args } from '@oclif/core'
import type { TaskView } from '../client/api.js'
import { ClientCommand } from '../client/command.js'
import { changeTask } from '../client/tasks.js'

export default class Pause extends ClientCommand {
  static summary = 'Pause a running task (SIGSTOP to its tool); `rrcloud resume` continues it.'
  static enableJsonFlag = true
  static examples = ['<%= config.bin %> pause 1361982308-837500']
  static args = { id: Args.string({ description: 'task id', required: true, ignoreStdin: true }) }

  async run (): Promise<TaskView> {
    const { args, flags } = await this.parse(Pause)
    const task = await changeTask(this.client(flags), args.id, 'pause')
    this.log(`id: ${task.id}\nstatus: ${task.status}`)
    return task
  }
}
