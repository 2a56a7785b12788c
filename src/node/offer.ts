import { availableParallelism, totalmem } from 'node:os'
import { builtinServicesDir, confine, resolveAll, type ResolvedService } from '../executors/services.js'
import { probeSandbox, type Limits, type Sandbox, type SandboxMode } from '../executors/sandbox.js'

export interface Offer {
  sandbox: Sandbox
  /** every service found, offered or not (with the reason) */
  services: ResolvedService[]
  /** the names of those offered */
  offered: string[]
  limits: Limits
}

/**
 * What this node offers: the services whose tools are installed and can be confined here (the
 * printer service when a printer is attached), and the limits each tool run gets.
 */
export function resolveOffer (
  config: { sandbox?: SandboxMode, serviceDirs?: string[], limits?: Limits, slots: number, timeoutSec: number, printers: string[], offer?: string[] },
  log: (line: string) => void,
): Offer {
  const mode = config.sandbox ?? 'auto'
  const sandbox = probeSandbox(mode)
  log(`sandbox: ${sandbox.note}`)
  const limits: Limits = {
    memoryMiB: Math.max(256, Math.floor(totalmem() / 2 ** 20 / config.slots)),
    cpuSec: config.timeoutSec * availableParallelism(),
    fileMiB: 4096,
    procs: 256,
    ...config.limits,
  }
  const services = resolveAll([builtinServicesDir, ...(config.serviceDirs ?? [])]).map((s) => {
    if (config.offer && !config.offer.includes(s.name)) return { ...s, available: false, reason: `not in this node's --offer (${config.offer.join(',')})` }
    if (s.kind === 'printer' && config.printers.length) return { ...s, available: true, reason: undefined }
    return confine(s, sandbox, mode)
  })
  for (const s of services) log(s.available ? `service ${s.name}: ${s.exe ?? `printers ${config.printers.join(', ')}`}` : `service ${s.name} not offered: ${s.reason}`)
  return { sandbox, services, offered: services.filter((s) => s.available).map((s) => s.name), limits }
}
