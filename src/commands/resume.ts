import { TaskChangeCommand } from '../client/command.js'

export default class Resume extends TaskChangeCommand {
  static summary = 'Resume a paused task.'
  static examples = ['<%= config.bin %> resume 1361982308-837500']
  protected readonly change = 'resume'
}
