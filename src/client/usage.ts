import { allowedPreargs } from '../executors/services.js'
import { localDescriptors } from './shapes.js'

/** The client's own options, as `rrcloud run --help` and `SERVICE.cloud --help` list them. */
export const OPTIONS_HELP = `Options, before or among the arguments (up to a --):
  --s=HOST[:PORT]      a node to use beside the LAN's (also rrcloudrc)
  --local              run the tool here, without a node
  --no-local-fallback  when no node is found, fail instead of running the tool here
  --printer=NAME       printrun: the printer, by name or port path
  --interface=IF       the interface to look for nodes on (RRCLOUD_INTERFACE)
  --wait               wait for the result (SERVICE.cloud always waits)
  --notifier=URL       called when the task ends ($id, $myip)
  --token=TOKEN        for a node with --token (or RRCLOUD_TOKEN)
  --json               print the task as JSON, not "id: ID"
  --with=PATH          a file or folder the model reads that its references do not name
                       (a computed file name); repeatable
  --no-cache           run the tool even when a node holds the result of the same work
  --help               this text`

const count = (min: number, max: number) =>
  min === max ? `${min}` : Number.isFinite(max) ? `${min} to ${max}` : `${min} or more`

/** Usage of one service (`openscad.cloud --help`): its inputs, prearguments and output forms, then the options. */
export function serviceUsage (service: string, invokedAs: string): string {
  const d = localDescriptors().find((x) => x.name === service)
  const sync = invokedAs.endsWith('.cloud')
  const cmd = sync ? invokedAs : `rrcloud ${service}`
  if (!d) {
    return `Usage: ${cmd} [OPTIONS] FILE... [-oOUTPUT]\n\n${service} is not described on this machine; a node may offer it: ` +
      '`rrcloud services` lists what the nodes offer.\n\n' + OPTIONS_HELP + '\n'
  }
  const file = d.fileIn ? `FILE.${d.fileIn}` : 'FILE'
  const ext = d.fileOut.replace(/^\$id/, '')
  const hasOutput = d.output !== '' && d.output !== 'stdout'
  const preargs = allowedPreargs(d)
  const lines = [
    `${cmd}: ${d.description || service}`,
    '',
    d.kind === 'printer'
      ? `Usage: ${cmd} [OPTIONS] PORT ${file}   or   ${cmd} --printer=NAME [OPTIONS] ${file}`
      : `Usage: ${cmd} [OPTIONS] ${preargs.map((p) => `[${p}FILE] `).join('')}${file}${d.maxInputs > 1 ? '...' : ''}${hasOutput ? ` [-oOUT${ext}]` : ''}`,
    '',
    `Inputs: ${count(d.minInputs, d.maxInputs)} file(s)${d.fileIn ? ` (.${d.fileIn})` : ''}, uploaded to the node`,
  ]
  if (preargs.length) {
    lines.push(`Prearguments: ${preargs.map((p) => p.endsWith('=') ? `${p}FILE (or ${p.slice(0, -1)} FILE)` : `${p}FILE`).join(', ')}: the file is uploaded with its prefix`)
  }
  if (d.kind === 'printer') lines.push('Output: none; the file is printed by the node the printer is attached to')
  else if (hasOutput) lines.push(`Output: -oFILE, -o FILE, --output=FILE or --output FILE; without one, next to the input with ${ext}`)
  else lines.push(`Output: ${ext ? `next to the input with ${ext}` : 'written to stdout'}`)
  lines.push(sync
    ? 'Waits for the task, writes the output and exits with the task\'s exit status (its log on stderr when it failed).'
    : 'Prints id: ID and returns (`rrcloud info ID`, `rrcloud fetch ID`); with --wait, as SERVICE.cloud.')
  lines.push('Other options of the tool cannot be passed on: the node runs what services/' + service + '.conf composes.', '', OPTIONS_HELP, '')
  return lines.join('\n')
}
