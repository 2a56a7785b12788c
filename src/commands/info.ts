import { Args } from '@oclif/core'
import type { TaskView } from '../client/api.js'
import { ClientCommand } from '../client/command.js'
import { formatTask, formatTaskList } from '../client/format.js'
import { everyNode, findTask } from '../client/lookup.js'
import { findPipeline, formatPipeline, PIPELINE_ID } from '../client/pipelines.js'
import type { PipelineView } from '../client/api.js'

export default class Info extends ClientCommand {
  static summary = 'Show a task (status queued, busy, paused, complete, failed, cancelled), or the tasks of every node.'
  static enableJsonFlag = true
  static examples = [
    '<%= config.bin %> info 1361982308-837500',
    '<%= config.bin %> --s=myserver.local info',
    '<%= config.bin %> info --json',
  ]

  static args = { id: Args.string({ description: 'task id, as printed by `rrcloud SERVICE ...`, or pipeline id (`rrcloud pipe --async ...`)', ignoreStdin: true }) }

  async run (): Promise<TaskView | TaskView[] | PipelineView> {
    const { args, flags } = await this.parse(Info)
    const ctx = this.client(flags)
    if (args.id && PIPELINE_ID.test(args.id)) {
      const { pipeline } = await findPipeline(ctx, args.id)
      this.log(formatPipeline(pipeline).trimEnd())
      return pipeline
    }
    if (args.id) {
      const { task } = await findTask(ctx, args.id)
      this.log(formatTask(task).trimEnd())
      return task
    }
    const { answers, failed } = await everyNode(ctx, (api) => api.tasks())
    for (const e of failed) process.stderr.write(`rrcloud: ${e.message}\n`)
    const all = answers.flatMap(({ api, value }) => value.map((t) => ({ ...t, node: api.server.url })))
      .sort((a, b) => a.ctime - b.ctime || a.id.localeCompare(b.id))
    this.log(formatTaskList(all).trimEnd())
    return all
  }
}
