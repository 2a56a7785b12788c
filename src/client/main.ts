import { existsSync, readFileSync } from 'node:fs'
import { basename } from 'node:path'
import { fileURLToPath } from 'node:url'
import { globalOptionLength, splitGlobal } from './args.js'

/** Entry of bin/run.js and every `*.cloud` name. Heavy modules are imported only on the path that needs them. */

const root = fileURLToPath(new URL('../..', import.meta.url))
const commandsDir = fileURLToPath(new URL('../commands', import.meta.url))
/** Seed names that differ from the service's. */
const ALIASES: Record<string, string> = { slicer: 'slic3r' }

const isCommand = (word: string) =>
  word === 'help' || existsSync(`${commandsDir}/${word}.js`) || existsSync(`${commandsDir}/${word}/index.js`)
const isHelp = (a: string) => a === '--help' || a === '-h'

async function oclif (args: string[]): Promise<void> {
  const { execute } = await import('@oclif/core')
  await execute({ dir: root, args })
}

async function service (name: string, argv: string[], wait: boolean, invokedAs: string): Promise<void> {
  const [{ runService }, { ClientError }] = await Promise.all([import('./run-service.js'), import('./errors.js')])
  try {
    const { opts, rest } = splitGlobal(argv)
    const real = ALIASES[name] ?? name
    if (rest.some(isHelp)) {
      const { serviceUsage } = await import('./usage.js')
      process.stdout.write(serviceUsage(real, invokedAs))
      return
    }
    process.exitCode = await runService(real, rest, { ...opts, wait: wait || opts.wait })
  } catch (err) {
    if (!(err instanceof ClientError)) throw err
    process.stderr.write(`rrcloud: ${err.message}\n`)
    process.exitCode = err.exit
  }
}

/** Index of the first word of argv[from..] that is not one of the client's options. */
function skipOptions (argv: string[], from: number): number {
  let i = from
  for (let n; i < argv.length && (n = globalOptionLength(argv, i)); i += n);
  return i
}

export async function main (invokedAs: string, argv: string[]): Promise<void> {
  const self = basename(invokedAs)
  if (self.endsWith('.cloud')) return service(self.slice(0, -'.cloud'.length), argv, true, self)
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
    const { version } = JSON.parse(readFileSync(`${root}/package.json`, 'utf8'))
    process.stdout.write(`rrcloud/${version} ${process.platform}-${process.arch} node-${process.version}\n`)
    return
  }
  const i = skipOptions(argv, 0)
  const word = argv[i]
  if (word === undefined && i > 0) {
    process.stderr.write('rrcloud: name a service or a command: rrcloud [--s=HOST[:PORT]] SERVICE FILE... (see rrcloud --help)\n')
    process.exitCode = 2
    return
  }
  if (word === undefined || word.startsWith('-') || (isCommand(word) && word !== 'run')) {
    // oclif wants the command first: `rrcloud --s=host info ID` → `rrcloud info --s=host ID`
    return oclif(word === undefined || word.startsWith('-') ? argv : [word, ...argv.slice(0, i), ...argv.slice(i + 1)])
  }
  // `rrcloud run [OPTIONS] SERVICE ARGS...` is `rrcloud [OPTIONS] SERVICE ARGS...`
  const at = word === 'run' ? skipOptions(argv, i + 1) : i
  const name = argv[at]
  const options = [...argv.slice(0, i), ...argv.slice(i + 1, at)]
  if (name === undefined || isHelp(name)) return oclif(['run', '--help'])
  return service(name, [...options, ...argv.slice(at + 1)], false, 'rrcloud')
}
