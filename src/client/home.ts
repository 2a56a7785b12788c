import { createRequire } from 'node:module'

/**
 * The user's home folder as os.homedir() finds it: $HOME when set (what a run nearly always has),
 * else the password database. node:os is loaded only for that: ~0.3 ms of a short run otherwise.
 */
export function homeDir (env: NodeJS.ProcessEnv = process.env): string {
  return env.HOME || (createRequire(import.meta.url)('node:os') as typeof import('node:os')).homedir()
}
