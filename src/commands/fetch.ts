import { Args, Flags } from '@oclif/core'
import { ClientCommand } from '../client/command.js'
import { fetchOutput } from '../client/tasks.js'
import { fetchPipeline, PIPELINE_ID } from '../client/pipelines.js'

export default class Fetch extends ClientCommand {
  static summary = "Write a complete task's result to a file."
  static description = 'The file is written whole or not at all: it is downloaded beside the destination and renamed once complete.'
  static enableJsonFlag = true
  static examples = [
    '<%= config.bin %> fetch 1361982308-837500 -o test.stl',
    '<%= config.bin %> fetch --wait 1361982308-837500',
    '<%= config.bin %> fetch 1361982308-837500 -o - | head',
  ]

  static args = { id: Args.string({ description: 'task id, or pipeline id (its last output)', required: true, ignoreStdin: true }) }
  static flags = {
    output: Flags.string({ char: 'o', summary: 'where to write it (- for stdout; default: the file name the node gave it, here)', helpValue: 'FILE' }),
    wait: Flags.boolean({ summary: 'wait for the task to end first' }),
  }

  async run (): Promise<{ id: string; status: string; file?: string }> {
    const { args, flags } = await this.parse(Fetch)
    if (PIPELINE_ID.test(args.id)) {
      const r = await fetchPipeline(this.client(flags), args.id, flags.output, flags.wait)
      if (r.file) this.logToStderr(`${r.id}: ${r.file}`)
      return r
    }
    const { task, file } = await fetchOutput(this.client(flags), args.id, flags.output, flags.wait)
    if (file) this.logToStderr(`${task.id}: ${file}`)
    return { id: task.id, status: task.status, file }
  }
}
