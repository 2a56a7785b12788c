import { TaskChangeCommand } from '../client/command.js'

export default class Pause extends TaskChangeCommand {
  static summary = 'Pause a running task (SIGSTOP to its tool); `rrcloud resume` continues it.'
  static examples = ['<%= config.bin %> pause 1361982308-837500']
  protected readonly change = 'pause'
}
