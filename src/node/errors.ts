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
