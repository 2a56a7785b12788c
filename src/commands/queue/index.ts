import { Flags } from '@oclif/core'
import { ClientCommand } from '../../client/command.js'
import { jobTarget, lanQueue, type FarmJob } from '../../client/farm.js'
import { table } from '../../client/format.js'

const copies = (j: FarmJob) => {
  const c = j.counts
  return [`${c.complete}/${j.copies.length} done`, c.printing + c.starting ? `${c.printing + c.starting} printing` : '', c.queued ? `${c.queued} queued` : '',
    c.failed ? `${c.failed} failed` : '', c.cancelled ? `${c.cancelled} cancelled` : ''].filter(Boolean).join(', ')
}
const where = (j: FarmJob) => [...new Set(j.copies.filter((c) => c.status === 'printing' || c.status === 'starting').map((c) => `${c.printer} (${c.node})`))].join(', ')

export function queueTable (jobs: FarmJob[]): string {
  if (!jobs.length) return 'the queue is empty\n'
  return table(['JOB', 'NODE', 'POS', 'FILE', 'FOR', 'COPIES', 'PRINTING ON', 'STATE'], jobs.map((j) => [
    j.id, j.node, String(j.position), j.name, jobTarget(j), copies(j), where(j) || '-',
    j.counts.queued + j.counts.starting + j.counts.printing === 0 ? 'done' : j.paused ? 'paused' : 'active',
  ]))
}

export default class Queue extends ClientCommand {
  static summary = 'List the farm queue of every node: jobs, their copies and where they print.'
  static description = `Each node keeps the jobs sent to it (\`rrcloud print\`, a slicer's upload); this lists them all, each node's in its order.

  rrcloud queue rm JOB             remove a job (copies already printing go on)
  rrcloud queue move JOB --to N    move a job to position N of its node's queue
  rrcloud queue pause [--group G]  hold the jobs (of a group) until resume
  rrcloud queue resume [--group G]`
  static enableJsonFlag = true
  static examples = ['<%= config.bin %> queue', '<%= config.bin %> queue --group mk3', '<%= config.bin %> queue --json']
  static flags = { group: Flags.string({ char: 'g', summary: 'only the jobs for this group', helpValue: 'GROUP' }) }

  async run (): Promise<FarmJob[]> {
    const { flags } = await this.parse(Queue)
    const { jobs, failed } = await lanQueue(this.client(flags), flags.group)
    for (const e of failed) process.stderr.write(`rrcloud: ${e.message}\n`)
    if (!flags.json) process.stdout.write(queueTable(jobs))
    return jobs
  }
}
