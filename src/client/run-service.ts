import { debugLog } from './log.js'
import { FINAL, NodeError, type NodeApi, type TaskView } from './api.js'
import { avoid } from './avoid.js'
import { firstNode } from './lookup.js'
import { rewriteArgs, type GlobalOptions, type ServiceShape } from './args.js'
import { clientContext, type ClientContext } from './context.js'
import { cannotAsk, NoNodeError } from './lan.js'
import { ClientError, EXIT, usage } from './errors.js'
import { checkWritable } from './output.js'
import { createReporter, type Reporter } from './progress.js'
import { shippedShape } from './shipped.js'
import { submit } from './submit.js'
import { describe, waitFor } from './wait.js'

const log = debugLog('rrcloud:run')

/** The shape of a service only a node knows (a descriptor of its own): from the first node that knows it. */
async function nodeShape (service: string, ctx: ClientContext): Promise<ServiceShape> {
  const { api, value: infos } = await firstNode(ctx, (a) => a.services(), service)
  const info = infos.find((x) => x.name === service)
  if (info) return (await import('./shapes.js')).shapeFromInfo(info)
  const names = infos.filter((x) => x.available).map((x) => x.name).join(', ')
  throw usage(`unknown service ${service}: ${api.server.url} offers ${names || 'none'}; see \`rrcloud services\``)
}

async function finish (api: NodeApi, t: TaskView, output: string | undefined, reporter: Reporter): Promise<number> {
  if (t.status === 'complete') {
    if (!t.out) return 0
    await api.download(t.id, output ?? process.stdout, (p) => reporter.bytes('download', p))
    reporter.done()
    return 0
  }
  reporter.done()
  if (t.status === 'failed') {
    try { process.stderr.write(await api.log(t.id)) } catch (err) { log('no log: %s', err) }
  }
  process.stderr.write(`rrcloud: ${t.service} task ${t.id} on ${api.server.name} ${t.status}${t.error ? `: ${t.error}` : ''}\n`)
  if (t.status === 'cancelled') return EXIT.interrupted
  return typeof t.exitCode === 'number' && t.exitCode > 0 ? t.exitCode : EXIT.failed
}

/**
 * `rrcloud [--s=HOST] SERVICE ARGS...` (asynchronous: prints `id: ID`) and, with `wait`,
 * `SERVICE.cloud ARGS...` (synchronous: result written where ARGS asked, the task's exit status).
 */
export async function runService (service: string, args: string[], o: GlobalOptions): Promise<number> {
  const reporter = createReporter()
  if (o.local) {
    const { localDescriptor, localDescriptors, shapeOf } = await import('./shapes.js')
    const here = localDescriptor(service)
    if (!here) throw usage(`unknown service ${service}: this machine knows ${localDescriptors().map((x) => x.name).join(', ')}`)
    const rw = rewriteArgs(shapeOf(here), args)
    if (rw.output) checkWritable(rw.output)
    const { runLocal } = await import('./local.js')
    return runLocal(here, rw, reporter)
  }
  const ctx = clientContext({ server: o.server, token: o.token, interface: o.interface })
  const shipped = await shippedShape(service)
  const shape = shipped ?? await nodeShape(service, ctx)
  let printer = o.printer
  // the seed's `printrun.cloud /dev/ttyUSB0 huge.gcode`: the printer comes first
  if (shape.printer && printer === undefined && args.length >= 2 && !/^-/.test(args[0]) && !GCODE.test(args[0])) {
    printer = args[0]
    args = args.slice(1)
  }
  if (printer !== undefined && !shape.printer) throw usage(`--printer: ${service} does not print; printrun does`)
  const rw = rewriteArgs(shape, args)
  if (o.wait && rw.output) checkWritable(rw.output)
  // say where the address came from: a stale rrcloudrc is a likely cause
  const named = (err: unknown) => {
    if (err instanceof ClientError && err.exit === EXIT.node && !(err instanceof NoNodeError)) err.message += ` (node chosen by ${ctx.source.origin(service)})`
    throw err
  }
  if (shape.printer) printer ??= await onlyPrinter(ctx, service).catch(named)
  const needs = { printer }
  // a print is one G-code file; a model goes with the files it reads
  const tree = shape.printer ? undefined : (await import('./project.js')).projectFiles(service, rw.inputs, o.with)
  const request = { service, inputs: rw.inputs, notifier: o.notifier, printer, tree, ...(o.noCache ? { cache: false } : {}) }
  const place = async () => {
    const sent = await submit(await ctx.source.candidates(service, needs), ctx.token, request, (p) => reporter.bytes('upload', p))
    ctx.source.took(sent.api.server, sent.task.cached !== undefined)
    return sent
  }
  const placed = () => place().catch(named)
  // Ctrl-C in a synchronous run cancels the task; before the node has answered, as soon as it does
  let interrupted = false
  let submitted: { api: NodeApi; task: TaskView } | undefined
  const cancel = () => {
    if (interrupted) process.exit(EXIT.interrupted)
    interrupted = true
    reporter.done()
    if (!submitted) return void process.stderr.write('\nrrcloud: interrupted; cancelling once the node has the task (Ctrl-C again to quit now)\n')
    const { api, task } = submitted
    process.stderr.write(`\nrrcloud: cancelling task ${task.id} on ${api.server.name} (Ctrl-C again to leave it running)\n`)
    api.change(task.id, 'cancel').catch((e) => log('cancel: %s', e))
  }
  if (o.wait) process.on('SIGINT', cancel)
  try {
    try {
      submitted = await placed()
    } catch (err) {
      // as the seed did with no server configured (and icecream with no peer): the tool of this machine
      if (!(err instanceof NoNodeError) || !o.wait || o.noLocalFallback || shape.printer || !shipped) throw err
      const here = (await import('./shapes.js')).localDescriptor(service)
      const { installedHere, runLocal } = await import('./local.js')
      if (!here || !installedHere(here)) throw err
      process.off('SIGINT', cancel)
      reporter.done()
      process.stderr.write(`rrcloud: no node found (looked at: ${err.looked.join(', ')}); running ${service} on this machine (--no-local-fallback to refuse)\n`)
      return await runLocal(here, rw, reporter)
    }
    reporter.done()
    if (!o.wait) {
      const { task } = submitted
      process.stdout.write(o.json ? JSON.stringify(task, null, 2) + '\n' : `id: ${task.id}\n`)
      return 0
    }
    if (interrupted) {
      interrupted = false
      cancel()
    }
    // a node that dies while it runs the task: the task runs once more elsewhere (not a print:
    // the printer is where that node is)
    let again = !shape.printer
    for (;;) {
      const { api, task } = submitted
      try {
        // a result the node already held comes back complete: nothing to wait for
        const done = FINAL.has(task.status) ? task : await waitFor(api, task.id, (t) => reporter.state(describe(t)))
        return await finish(api, done, rw.output, reporter)
      } catch (err) {
        if (!again || interrupted || !(err instanceof NodeError) || err.status !== undefined || await answers(api)) throw err
        again = false
        avoid(api.server.url)
        reporter.done()
        process.stderr.write(`rrcloud: ${api.server.name} stopped answering while running task ${task.id}; running it again on another node\n`)
        await ctx.source.peers(true)
        submitted = await placed()
        reporter.done()
      }
    }
  } finally {
    process.off('SIGINT', cancel)
  }
}

const GCODE = /\.(gcode|gco|g|nc)$/i

/** Whether a node that just failed a request answers again within a second (a blip, not a death). */
async function answers (api: NodeApi): Promise<boolean> {
  for (let i = 0; i < 2; i++) {
    await new Promise((resolve) => setTimeout(resolve, 500))
    try {
      await api.meta()
      return true
    } catch {}
  }
  return false
}

/**
 * With no printer named: the one printer of the LAN, or an error that lists them; with none known
 * while named nodes could not be asked, why they could not.
 */
async function onlyPrinter (ctx: ClientContext, service: string): Promise<string | undefined> {
  const peers = (await ctx.source.peers()).filter((p) => p.services.includes(service))
  const printers = peers.flatMap((p) => (p.printers ?? []).map((x) => ({ ...x, node: p.name })))
  if (printers.length === 0 && ctx.source.unreachable().length) throw cannotAsk(ctx.source.unreachable(), 'its printers')
  if (printers.length <= 1) return printers[0]?.name
  throw usage(`say which printer: --printer NAME or ${service}.cloud PORT FILE; printers: ${printers.map((x) => `${x.name} (${x.port}, ${x.state ?? '?'}) on ${x.node}`).join('; ')}`)
}
