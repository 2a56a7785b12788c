import type { ServiceInfo } from '../client/api.js'
import { ClientCommand } from '../client/command.js'
import { table } from '../client/format.js'
import { firstNode } from '../client/lookup.js'

export default class Services extends ClientCommand {
  static summary = 'List the services a node offers, and the ones it cannot offer and why.'
  static enableJsonFlag = true
  static examples = ['<%= config.bin %> services', '<%= config.bin %> --s=myserver.local services --json']

  async run (): Promise<ServiceInfo[]> {
    const { flags } = await this.parse(Services)
    const { api, value } = await firstNode(this.client(flags), (a) => a.services())
    this.log(`${api.server.url}:`)
    this.log(table(['SERVICE', 'OFFERED', 'TOOL OR WHY NOT', 'DESCRIPTION'], value.map((s) => [
      s.name, s.available ? 'yes' : 'no', (s.available ? s.exe : s.reason) ?? '', s.description,
    ])).trimEnd())
    return value
  }
}
