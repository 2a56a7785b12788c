import { ClientCommand } from '../client/command.js'
import { formatRecord } from '../client/format.js'
import { firstNode } from '../client/lookup.js'

export default class Meta extends ClientCommand {
  static summary = "Show a node's state: load, services, slots, queue, uptime, version."
  static enableJsonFlag = true
  static examples = ['<%= config.bin %> meta', '<%= config.bin %> --s=myserver.local meta --json']

  async run (): Promise<Record<string, unknown>> {
    const { flags } = await this.parse(Meta)
    const { api, value } = await firstNode(this.client(flags), (a) => a.meta())
    this.log(formatRecord({ node: api.server.url, ...value }).trimEnd())
    return value
  }
}
