/** Exit codes of the client; a task's own non-zero exit code is passed through as it is. */
export const EXIT = { failed: 1, usage: 2, node: 3, interrupted: 130 } as const

/** An error a user can act on: the message says what happened and what to do about it. */
export class ClientError extends Error {
  readonly exit: number

  constructor (message: string, exit: number = EXIT.failed) {
    super(message)
    this.exit = exit
  }
}

export const usage = (message: string) => new ClientError(message, EXIT.usage)
