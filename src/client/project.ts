import type { Input } from './args.js'
import { scanProject } from './deps/index.js'
import { hashTree, type TaskTree } from './tree.js'

/** At most this many references that could not be followed are listed; the rest are counted. */
const SHOWN = 10

/**
 * The task's files as they travel: the inputs and every file their tool will read (src/client/deps),
 * with `--with`, each by digest. What could not be followed is said on stderr; the task still goes
 * (the node fails it if the tool then misses a file).
 */
export async function projectOf (service: string, inputs: Input[], withPaths: string[], warn = (line: string) => process.stderr.write(line + '\n')): Promise<TaskTree> {
  const p = scanProject(service, inputs, { with: withPaths })
  if (p.unresolved.length) {
    warn(`rrcloud: ${p.unresolved.length} reference(s) of the model could not be followed; add what it needs with --with=PATH:`)
    for (const u of p.unresolved.slice(0, SHOWN)) warn(`  ${u}`)
    if (p.unresolved.length > SHOWN) warn(`  ... and ${p.unresolved.length - SHOWN} more`)
  }
  return hashTree(p.mains.map((m, i) => ({ ...m, ...(inputs[i].prearg ? { prearg: inputs[i].prearg } : {}) })), p.files)
}
