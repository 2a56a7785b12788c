import { ClientCommand } from '../client/command.js'
import { lanPrinters, type FarmPrinter } from '../client/farm.js'
import { table } from '../client/format.js'

const job = (p: FarmPrinter) => {
  if (!p.job) return '-'
  const what = p.job.file ?? (p.job.task ? `task ${p.job.task}` : '')
  return `${what}${p.job.job ? ` (${p.job.job}${p.job.copy ? ` #${p.job.copy}` : ''})` : ''}`
}

export function printersTable (printers: FarmPrinter[]): string {
  if (!printers.length) return 'no printers on the LAN\n'
  return table(['PRINTER', 'NODE', 'STATE', 'JOB', 'PROGRESS', 'TEMPERATURES', 'GROUPS'], printers.map((p) => [
    p.name,
    p.node,
    p.state + (p.state === 'error' && p.error ? ` (${p.error.slice(0, 60)})` : '') + (p.autoclear ? ' [autoclear]' : ''),
    job(p),
    p.progress && (p.state === 'printing' || p.state === 'paused') ? `${p.progress.percent.toFixed(1)}%` : '',
    p.temperatures ?? '',
    p.groups.join(',') || '-',
  ]))
}

export default class Printers extends ClientCommand {
  static summary = 'List every printer of the LAN: state (idle, printing, paused, finished, error, disconnected), job, progress, temperatures, groups.'
  static description = 'Each node is asked for its printers. A `finished` printer holds its last print on the bed and takes no job of the farm queue until `rrcloud clear PRINTER`; one in `error` neither.'
  static enableJsonFlag = true
  static examples = ['<%= config.bin %> printers', '<%= config.bin %> printers --json']

  async run (): Promise<FarmPrinter[]> {
    const { flags } = await this.parse(Printers)
    const { printers, failed } = await lanPrinters(this.client(flags))
    for (const e of failed) process.stderr.write(`rrcloud: ${e.message}\n`)
    if (!flags.json) process.stdout.write(printersTable(printers))
    return printers
  }
}
