import { Flags } from '@oclif/core'
import { ClientCommand } from '../../client/command.js'
import { everyFarmNode } from '../../client/farm.js'

export default class QueueResume extends ClientCommand {
  static summary = 'Let the jobs of the farm queue (of one group) start again on every node.'
  static enableJsonFlag = true
  static examples = ['<%= config.bin %> queue resume', '<%= config.bin %> queue resume --group mk3']
  static flags = { group: Flags.string({ char: 'g', summary: 'only the jobs for this group', helpValue: 'GROUP' }) }

  async run (): Promise<Array<{ node: string, paused: string[] }>> {
    const { flags } = await this.parse(QueueResume)
    const { answers, failed } = await everyFarmNode(this.client(flags), (api) => api.resume(flags.group))
    for (const e of failed) process.stderr.write(`rrcloud: ${e.message}\n`)
    const out = answers.map(({ value }) => value)
    for (const r of out) this.log(`${r.node}: ${r.paused.length ? `paused: ${r.paused.map((g) => g === '*' ? 'all jobs' : `group ${g}`).join(', ')}` : 'not paused'}`)
    return out
  }
}
