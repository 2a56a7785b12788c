import { Command, Errors, Flags } from '@oclif/core'
import { clientContext, type ClientContext } from './context.js'
import { ClientError } from './errors.js'

/** Commands print a ClientError as `rrcloud: message` and exit with its code (JSON with --json). */
export abstract class BaseCommand extends Command {
  async catch (err: Error & { exitCode?: number }): Promise<unknown> {
    if (err instanceof ClientError) {
      process.exitCode = err.exit
      if (this.jsonEnabled()) return super.catch(new Errors.CLIError(err.message, { exit: err.exit }))
      process.stderr.write(`rrcloud: ${err.message}\n`)
      return
    }
    return super.catch(err)
  }
}

/** Base of the commands that talk to nodes: the seed's --s=HOST[:PORT] and a token. */
export abstract class ClientCommand extends BaseCommand {
  static baseFlags = {
    s: Flags.string({
      summary: 'a node to talk to, beside those found on the LAN (and in rrcloudrc)',
      helpValue: 'HOST[:PORT]',
      aliases: ['server'],
    }),
    token: Flags.string({ summary: 'token of a node started with --token', env: 'RRCLOUD_TOKEN', helpValue: 'TOKEN' }),
  }

  protected client (flags: { s?: string; token?: string; interface?: string }): ClientContext {
    return clientContext({ server: flags.s, token: flags.token, interface: flags.interface })
  }
}
