import { Args, Command, Errors, Flags } from '@oclif/core'
import type { PipelineView, TaskView } from './api.js'
import { clientContext, type ClientContext } from './context.js'
import { ClientError } from './errors.js'
import { changeTask } from './tasks.js'
import { changePipeline, PIPELINE_ID } from './pipelines.js'

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

/** Base of the commands that talk to nodes: the seed's --s=HOST[:PORT], a token, the interface to look on. */
export abstract class ClientCommand extends BaseCommand {
  static baseFlags = {
    s: Flags.string({
      summary: 'a node to talk to, beside those found on the LAN (and in rrcloudrc)',
      helpValue: 'HOST[:PORT]',
      aliases: ['server'],
    }),
    token: Flags.string({ summary: 'token of a node started with --token', env: 'RRCLOUD_TOKEN', helpValue: 'TOKEN' }),
    interface: Flags.string({ summary: 'network interface (name or IPv4 address) to look for nodes on', env: 'RRCLOUD_INTERFACE', helpValue: 'IFACE' }),
  }

  protected client (flags: { s?: string; token?: string; interface?: string }): ClientContext {
    return clientContext({ server: flags.s, token: flags.token, interface: flags.interface })
  }
}

/** `rrcloud cancel|pause|resume ID`: one change of a task, on whichever node has it. */
export abstract class TaskChangeCommand extends ClientCommand {
  static enableJsonFlag = true
  static args = { id: Args.string({ description: 'task id', required: true, ignoreStdin: true }) }
  protected abstract readonly change: 'cancel' | 'pause' | 'resume'

  async run (): Promise<TaskView | PipelineView> {
    // oclif spreads the class it is given: statics inherited from here would be left out
    const C = this.constructor as typeof TaskChangeCommand
    const { args, flags } = await this.parse({ args: C.args, flags: C.flags, baseFlags: C.baseFlags, enableJsonFlag: C.enableJsonFlag } as typeof TaskChangeCommand)
    const task = PIPELINE_ID.test(args.id) ? await changePipeline(this.client(flags), args.id, this.change) : await changeTask(this.client(flags), args.id, this.change)
    this.log(`id: ${task.id}\nstatus: ${task.status}`)
    return task
  }
}
