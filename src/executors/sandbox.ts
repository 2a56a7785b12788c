import { spawnSync } from 'node:child_process'
import { existsSync, lstatSync, mkdtempSync, readlinkSync, realpathSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join, resolve } from 'node:path'
import { findExecutable, taskEnv } from './services.js'
import { prepareFolder, type RunFolder, type RunInput } from './run-folder.js'

/** `auto`: bwrap when it works here, else none (and no service that needs one); `bwrap`: bwrap or refuse to start; `none`: tools run unconfined. */
export type SandboxMode = 'auto' | 'bwrap' | 'none'

/** Resource limits of one tool run (applied with setrlimit through prlimit(1)); 0 or unset: no limit. */
export interface Limits {
  /** data segment (heap, anonymous memory), MiB */
  memoryMiB?: number
  /** CPU time of each process, seconds */
  cpuSec?: number
  /** largest file the tool may write, MiB */
  fileMiB?: number
  /** processes and threads of the sandbox user; only where tools run as a user of their own */
  procs?: number
}

/** How this node runs tools, as decided at start. */
export interface Sandbox {
  mode: 'bwrap' | 'none'
  /** what it is, or why there is none (as meta and the node's log show it) */
  note: string
  /** mode none under auto: why bwrap could not be used */
  why?: string
  bwrap?: string
  prlimit?: string
  setpriv?: string
  /** user the tools run as, when the node runs as root */
  uid?: number
  gid?: number
}

export type { RunInput }

export interface SandboxJob {
  exe: string
  args: string[]
  /** the task's folder on this machine: the tool's working directory, the only place it may write */
  runDir: string
  inputs: RunInput[]
  /** extra read-only paths the tool needs (descriptor `sandbox.ro`) */
  ro: string[]
  /** the tool's whole environment (nothing of the node's is passed on) */
  env: Record<string, string>
  limits: Limits
}

/** The unprivileged user (nobody) that tools run as when the node runs as root. */
const NOBODY = 65534

/** Read-only system paths every tool gets (those that exist here). */
const SYSTEM_RO = [
  '/usr', '/etc/fonts', '/etc/ld.so.cache', '/etc/alternatives', '/etc/localtime', '/etc/passwd', '/etc/group',
  '/var/cache/fontconfig',
]
/** Top-level folders that are links into /usr on merged-/usr systems, or real folders on others. */
const TOP = ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32']
/** private /tmp of a tool, bytes */
const TMP_SIZE = 512 << 20

const SYSTEM_DIRS = ['/usr/bin', '/bin', '/usr/sbin', '/sbin']

/** A program the sandbox uses: in the system's folders first, then on PATH. */
const onPath = (name: string) => findExecutable(name, [...SYSTEM_DIRS, ...(process.env.PATH ?? '').split(delimiter).filter(Boolean)])

/** A sandbox of mode none: tools run as the node's user, in their task folder, with limits. */
function unconfined (note: string, why?: string): Sandbox {
  return { mode: 'none', note, ...(why ? { why } : {}), prlimit: onPath('prlimit') }
}

/**
 * Decides how tools run here. bwrap is tried for real (a sandboxed `true`), since a kernel without
 * user namespaces or a container without the rights makes it fail at run time only.
 */
export function probeSandbox (mode: SandboxMode): Sandbox {
  if (mode === 'none') return unconfined('none (asked for with --sandbox none): tools see the whole machine as the node\'s user')
  const asked = process.env.RRCLOUD_BWRAP || 'bwrap'
  const bwrap = onPath(asked)
  const fail = (why: string): Sandbox => {
    if (mode === 'bwrap') throw new Error(`--sandbox bwrap: ${why}`)
    return unconfined(`none: ${why}; services that run task content as a program are not offered`, why)
  }
  if (!bwrap) return fail(`bubblewrap (${asked}) is not installed (apt install bubblewrap)`)
  const root = process.getuid?.() === 0
  const setpriv = root ? onPath('setpriv') : undefined
  if (root && !setpriv) return fail('setpriv (util-linux) is missing: tools could not run as an unprivileged user')
  const sb: Sandbox = {
    mode: 'bwrap',
    note: `bwrap (${bwrap})${root ? `, tools run as uid ${NOBODY}` : ''}`,
    bwrap,
    prlimit: onPath('prlimit'),
    setpriv,
    ...(root ? { uid: NOBODY, gid: NOBODY } : {}),
  }
  const truePath = onPath('true')
  if (!truePath) return fail('no `true` program to try bwrap with')
  const tried = mkdtempSync(join(tmpdir(), 'rrcloud-sandbox-'))
  const { exe, args } = wrap(sb, { exe: truePath, args: [], runDir: tried, inputs: [], ro: [], env: {}, limits: {} })
  const r = spawnSync(exe, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10000, env: {} })
  rmSync(tried, { recursive: true, force: true })
  if (r.status !== 0) {
    const err = r.error?.message ?? (r.stderr.toString().trim() || `exit ${r.status ?? r.signal}`)
    return fail(`bwrap does not work here (${err})`)
  }
  return sb
}

const MiB = 2 ** 20

/** prlimit(1) arguments for the limits that are set. */
function limitArgs (sb: Sandbox, l: Limits): string[] {
  const a: string[] = []
  if (l.memoryMiB) a.push(`--data=${l.memoryMiB * MiB}`)
  if (l.cpuSec) a.push(`--cpu=${l.cpuSec}`)
  if (l.fileMiB) a.push(`--fsize=${l.fileMiB * MiB}`)
  // RLIMIT_NPROC counts every process of the user: only meaningful for a user of the tools' own
  if (l.procs && sb.uid !== undefined) a.push(`--nproc=${l.procs}`)
  a.push('--core=0')
  return a
}

/** systemArgs by the extra paths they were made for: the system's layout is looked at once per tool */
const systemArgsCache = new Map<string, string[]>()

/** bwrap arguments that show the read-only system: /usr, the links into it, the parts of /etc tools read. */
function systemArgs (extra: string[]): string[] {
  const key = extra.join('\0')
  let a = systemArgsCache.get(key)
  if (!a) systemArgsCache.set(key, a = systemArgsOf(extra))
  return a
}

function systemArgsOf (extra: string[]): string[] {
  const a: string[] = []
  extra = [...new Set(extra)].filter((p) => !SYSTEM_RO.some((q) => p === q || p.startsWith(q + '/')))
  for (const top of TOP) {
    let st
    try { st = lstatSync(top) } catch { continue }
    if (st.isSymbolicLink()) a.push('--symlink', readlinkSync(top), top)
    else a.push('--ro-bind', top, top)
  }
  const paths = [...SYSTEM_RO, ...extra].filter((p) => existsSync(p))
  // folders on the way to a mount (/etc, /var/cache) would be made 0700, unreadable to the tool
  const parents = new Set<string>()
  for (const p of paths) {
    for (let d = dirname(p); d !== '/' && d !== '/tmp' && !paths.some((q) => d === q || d.startsWith(q + '/')); d = dirname(d)) parents.add(d)
  }
  for (const d of [...parents].sort()) a.push('--perms', '0755', '--dir', d)
  for (const p of paths) a.push('--ro-bind', p, p)
  return a
}

/** The tool's executable, and what it links to, as paths to show read-only. */
function toolPaths (exe: string): string[] {
  try { return [...new Set([exe, realpathSync(exe)])] } catch { return [] }
}

/**
 * The command line that runs a tool: in bwrap, it sees the read-only system, its task folder
 * (read-write, as /task, its inputs read-only in it) and a private /tmp; no network, no other
 * process, no other task, no data folder, no home; as nobody when the node runs as root. In both
 * modes, prlimit sets the limits first and the tool's environment is only what is given.
 */
export function wrap (sb: Sandbox, j: SandboxJob): { exe: string; args: string[] } {
  let argv = [j.exe, ...j.args]
  if (sb.mode === 'bwrap') {
    const userOwn = sb.uid === undefined
    argv = [
      sb.bwrap!,
      // as root, no user namespace: the tool becomes a real unprivileged user through setpriv
      ...(userOwn ? ['--unshare-user'] : []),
      '--unshare-ipc', '--unshare-pid', '--unshare-net', '--unshare-uts', '--unshare-cgroup-try',
      '--die-with-parent',
      // mounts in order: the private /tmp first, so that read-only paths under /tmp stay visible
      '--proc', '/proc', '--dev', '/dev',
      '--perms', '1777', '--size', String(TMP_SIZE), '--tmpfs', '/tmp',
      // the tool itself, where it is not part of the system (a Node.js of its own, a tool in /opt)
      ...systemArgs([...toolPaths(j.exe), ...j.ro]),
      '--bind', j.runDir, '/task',
      ...j.inputs.flatMap((i) => ['--ro-bind', i.host, `/task/${i.name}`]),
      '--chdir', '/task',
      '--',
      ...(sb.setpriv && sb.uid !== undefined
        ? [sb.setpriv, `--reuid=${sb.uid}`, `--regid=${sb.gid}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs', '--']
        : []),
      ...argv,
    ]
  }
  if (sb.prlimit) argv = [sb.prlimit, ...limitArgs(sb, j.limits), '--', ...argv]
  return { exe: argv[0], args: argv.slice(1) }
}

/** The folder a task's tool runs in, as the spawn helper makes it (./run-folder.ts) for this sandbox. */
export function runFolder (sb: Sandbox, runDir: string, inputs: RunInput[], keep?: RunFolder['keep']): RunFolder {
  return { dir: runDir, inputs, mountPoints: sb.mode === 'bwrap', ...(sb.uid !== undefined ? { owner: [sb.uid, sb.gid!] } : {}), ...(keep ? { keep } : {}) }
}

/** Makes a task's folder afresh, here and now (./run-folder.ts). */
export function prepareRunDir (sb: Sandbox, runDir: string, inputs: RunInput[]): void {
  prepareFolder(runFolder(sb, runDir, inputs))
}

/** The environment of a tool: a plain PATH, a home of its own, the descriptor's variables (`$task`: its folder as it sees it). */
export function toolEnv (sb: Sandbox, runDir: string, extra: Record<string, string>): Record<string, string> {
  return {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: sb.mode === 'bwrap' ? '/tmp' : runDir,
    TMPDIR: sb.mode === 'bwrap' ? '/tmp' : runDir,
    LANG: 'C.UTF-8',
    ...taskEnv(extra, sb.mode === 'bwrap' ? '/task' : resolve(runDir)),
  }
}
