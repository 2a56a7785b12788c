/**
 * One shape for every kind of work a task can be (a tool run as a child process, a print on a
 * printer of the node): the task runner plans, checks, starts, pauses, resumes and cancels it
 * through this, and learns how it ended; what is particular to a kind stays in its executor.
 */

/** An input of a task: the file on this machine, its name (a relative path) in the task's folder, its prearg. */
export interface ExecInput { host: string; name: string; prearg?: string }

/** What a task will run, decided when it is accepted. */
export interface ExecPlan {
  /** the task's `cmd`, as a user reads it */
  cmd: string
  /** the name of its output, when it makes one (kept as tasks/out/NAME) */
  out?: string
}

/** A task's work as an executor is given it. */
export interface ExecJob {
  id: string
  inputs: ExecInput[]
  /** the other files of the task's folder (a model's includes, imports): there for the tool, not on its command line */
  files: ExecInput[]
  /** the task's log */
  logFile: string
  /** where its output is kept once the task completes (with plan().out) */
  outFile?: string
  /** the work is stopped after this long (none: it may take as long as it takes) */
  timeoutMs?: number
  /** fields of the task that change as the work goes on (progress, percent, temperatures, ...) */
  onUpdate (patch: Record<string, unknown>): void
}

/** How the work ended. A cancel without `error` was asked for (by a user, or by the node stopping). */
export interface ExecEnd {
  status: 'complete' | 'failed' | 'cancelled'
  error?: string
  exitCode?: number | null
}

export interface Execution {
  /** the process, for work that is one (known once started) */
  readonly pid?: number
  /** resolves once the work runs, with its pid where it has one */
  started?: Promise<number | undefined>
  done: Promise<ExecEnd>
  cancel (): void
  pause (): void
  resume (): void
}

export interface Executor {
  plan (id: string, inputs: ExecInput[]): ExecPlan
  /** why these inputs must not run here (content that is not what the service takes, or names a program), or undefined */
  refuse (inputs: ExecInput[]): Promise<string | undefined>
  start (job: ExecJob): Execution
}
