import { existsSync } from 'node:fs'
import { usage } from './errors.js'
import { builtinServicesDir, confine, resolveService } from '../executors/services.js'
import { probeSandbox, type Sandbox } from '../executors/sandbox.js'
import { multicastInterfaces } from '../discovery/mdns.js'
import { loadChecked } from './shapes.js'

export interface DoctorRow {
  service: string
  available: boolean
  /** the executable that would run */
  exe?: string
  /** why not, when not available */
  reason?: string
  /** commands that install a missing tool, from the descriptor's `provides` */
  install: string[]
}

/** `apt:openscad` → `apt-get install openscad`; `npm:@jscad/cli` → `npm install -g @jscad/cli`. */
export function installCommand (provides: string): string {
  const [kind, ...rest] = provides.split(':')
  const pkg = rest.join(':')
  if (kind === 'apt') return `apt-get install ${pkg}`
  if (kind === 'npm') return `npm install -g ${pkg}`
  return provides
}

/** Which services this machine could run, and what to install for the others. */
export function doctor (extraDirs: string[] = [], envPath = process.env.PATH ?? '', sandbox: Sandbox = probeSandbox('auto')): DoctorRow[] {
  for (const d of extraDirs) {
    if (!existsSync(d)) throw usage(`--services ${d}: no such folder`)
  }
  return loadChecked([builtinServicesDir, ...extraDirs]).map((d) => {
    const found = resolveService(d, envPath)
    const r = confine(found, sandbox, 'auto')
    if (r.available) return { service: d.name, available: true, exe: r.exe, install: [] }
    if (found.available) return { service: d.name, available: false, exe: found.exe, reason: r.reason, install: ['apt-get install bubblewrap'] }
    return { service: d.name, available: false, reason: r.reason?.replace(/ \(install [^)]*\)$/, ''), install: d.provides.map(installCommand) }
  })
}

/** Whether mDNS can work here, from the interfaces alone (nothing is sent): one line. */
export function mdnsLine (): string {
  const { usable, skipped } = multicastInterfaces()
  if (usable.length) return `mdns: can work on ${usable.map((i) => `${i.name} (${i.address})`).join(', ')}`
  return `mdns: cannot work here: no network interface can carry multicast${skipped.length ? ` (${skipped.join('; ')})` : ''}; nodes here cannot be found by other machines, nor find them (name them with --s or in rrcloudrc)`
}
