import { allowedPreargs, builtinServicesDir, loadDescriptors, ServiceConfigError, type ServiceDescriptor } from '../executors/services.js'
import { ClientError, EXIT } from './errors.js'
import type { ServiceInfo } from './api.js'
import type { ServiceShape } from './args.js'

let cached: ServiceDescriptor[] | undefined

/** Loads descriptors; a broken one is reported as such, not as a crash. */
export function loadChecked (dirs: string[]): ServiceDescriptor[] {
  try {
    return loadDescriptors(dirs)
  } catch (err) {
    if (err instanceof ServiceConfigError) throw new ClientError(`bad service descriptor: ${err.message}`, EXIT.failed)
    throw err
  }
}

/** The descriptors shipped with rrcloud (services/*.conf). */
export const localDescriptors = () => (cached ??= loadChecked([builtinServicesDir]))

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
