import type { Input } from './args.js'
import { scanProject } from './deps/index.js'
import { digestsOf, sizeTree, type FileTree, type TaskTree } from './tree.js'

/** At most this many references that could not be followed are listed; the rest are counted. */
const SHOWN = 10

/**
 * The task's files as they travel: the inputs and every file their tool will read (src/client/deps),
 * with `--with`, and their sizes. What could not be followed is said on stderr; the task still goes
 * (the node fails it if the tool then misses a file).
 */
export function projectFiles (service: string, inputs: Input[], withPaths: string[], warn = (line: string): void => { process.stderr.write(line + '\n') }): FileTree {
  const p = scanProject(service, inputs, { with: withPaths })
  if (p.unresolved.length) {
    warn(`rrcloud: ${p.unresolved.length} reference(s) of the model could not be followed; add what it needs with --with=PATH:`)
    for (const u of p.unresolved.slice(0, SHOWN)) warn(`  ${u}`)
    if (p.unresolved.length > SHOWN) warn(`  ... and ${p.unresolved.length - SHOWN} more`)
  }
  return sizeTree(p.mains.map((m, i) => ({ ...m, ...(inputs[i].prearg ? { prearg: inputs[i].prearg } : {}) })), p.files)
}

/** The same, each file by digest. */
export const projectOf = (service: string, inputs: Input[], withPaths: string[], warn?: (line: string) => void): Promise<TaskTree> =>
  digestsOf(projectFiles(service, inputs, withPaths, warn))
