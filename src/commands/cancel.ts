import { TaskChangeCommand } from '../client/command.js'

export default class Cancel extends TaskChangeCommand {
  static summary = 'Cancel a queued or running task (its tool is stopped: SIGINT, then SIGTERM, then SIGKILL), or a pipeline (its running stage; the stages after it are dropped).'
  static examples = ['<%= config.bin %> cancel 1361982308-837500']
  protected readonly change = 'cancel'
}
