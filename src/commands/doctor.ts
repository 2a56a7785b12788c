import { Flags } from '@oclif/core'
import { BaseCommand } from '../client/command.js'
import { doctor, mdnsLine, type DoctorRow } from '../client/doctor.js'
import { table } from '../client/format.js'
import { probeSandbox } from '../executors/sandbox.js'

export default class Doctor extends BaseCommand {
  static summary = 'Check which tools this machine has for which service, and what to install for the others.'
  static enableJsonFlag = true
  static examples = ['<%= config.bin %> doctor', '<%= config.bin %> doctor --json']
  static flags = {
    services: Flags.string({ summary: 'extra folder of service descriptors (*.conf), as for `rrcloud node`', multiple: true, helpValue: 'DIR' }),
  }

  async run (): Promise<DoctorRow[]> {
    const { flags } = await this.parse(Doctor)
    const sandbox = probeSandbox('auto')
    const rows = doctor(flags.services, undefined, sandbox)
    this.log(`sandbox: ${sandbox.note}`)
    this.log(`${mdnsLine()}\n`)
    this.log(table(['SERVICE', 'TOOL', 'TO INSTALL'], rows.map((r) => [
      r.service, r.available ? r.exe! : `missing: ${r.reason}`, r.install.join(' or '),
    ])).trimEnd())
    const missing = rows.filter((r) => !r.available).length
    this.log(missing ? `\n${missing} service(s) cannot run here; a node started here (rrcloud node) offers the others.` : '\nevery service can run here.')
    return rows
  }
}
