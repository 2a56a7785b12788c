import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { allowedPreargs, builtinServicesDir, loadDescriptors, parseDescriptor, ServiceConfigError, type ServiceDescriptor } from '../executors/services.js'
import { ClientError, EXIT } from './errors.js'
import type { ServiceInfo } from './api.js'
import type { ServiceShape } from './args.js'

let cached: ServiceDescriptor[] | undefined

/** A broken descriptor is reported as such, not as a crash. */
function checked<T> (load: () => T): T {
  try {
    return load()
  } catch (err) {
    if (err instanceof ServiceConfigError) throw new ClientError(`bad service descriptor: ${err.message}`, EXIT.failed)
    throw err
  }
}

/** Loads descriptors; a broken one is reported as such, not as a crash. */
export const loadChecked = (dirs: string[]): ServiceDescriptor[] => checked(() => loadDescriptors(dirs))

/** The descriptors shipped with rrcloud (services/*.conf). */
export const localDescriptors = () => (cached ??= loadChecked([builtinServicesDir]))

const NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/

/** A descriptor's text, parsed; a broken one is reported as such. */
export const parseChecked = (name: string, text: string, file: string): ServiceDescriptor => checked(() => parseDescriptor(name, text, file))

/** The descriptor shipped with rrcloud for one service (services/NAME.conf), or undefined. */
export function localDescriptor (name: string): ServiceDescriptor | undefined {
  if (cached) return cached.find((d) => d.name === name)
  if (!NAME.test(name)) return undefined
  const file = join(builtinServicesDir, `${name}.conf`)
  let text
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  return parseChecked(name, text, file)
}

export function shapeOf (d: ServiceDescriptor): ServiceShape {
  const input = /^(\S+)\$fileIn$/.exec(d.input)
  return {
    name: d.name,
    preargs: allowedPreargs(d),
    output: d.output,
    fileOut: d.fileOut,
    minInputs: d.minInputs,
    maxInputs: d.maxInputs,
    inputPrefix: input?.[1],
    printer: d.kind === 'printer',
  }
}

/** The shape of a service only the node knows (a descriptor of its own). */
export function shapeFromInfo (i: ServiceInfo): ServiceShape {
  return {
    name: i.name,
    preargs: i.argInput,
    output: i.output,
    fileOut: i.fileOut,
    minInputs: i.inputs[0],
    maxInputs: i.inputs[1] ?? Infinity,
  }
}
