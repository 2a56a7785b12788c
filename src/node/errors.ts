/** The one error type of the node: an HTTP status and a message a user can act on. */
export class HttpError extends Error {
  readonly status: number
  readonly extra: Record<string, unknown>

  constructor (status: number, message: string, extra: Record<string, unknown> = {}) {
    super(message)
    this.status = status
    this.extra = extra
  }
}

export const badRequest = (msg: string, extra?: Record<string, unknown>) => new HttpError(400, msg, extra)
export const notFound = (msg = 'not found') => new HttpError(404, msg)

/**
 * The task records cannot be written (the disk is full, or failing): raised below the HTTP edge,
 * which answers 507. Changes to existing tasks are kept and written once space allows.
 */
export class StoreUnwritable extends Error {
  readonly code = 'store-unwritable'

  constructor (cause: Error) {
    super(`this node cannot write its task records now (${cause.message}); try again later or another node`, { cause })
  }
}
