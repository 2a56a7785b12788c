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
 * Why a component of the node (the task runner, the store) refuses a request, by kind. The HTTP
 * app gives each kind its status once (`statusOf`); the components know nothing of HTTP.
 */
export type Refusal =
  /** the request itself is wrong: unknown service or printer, content that must not run */
  | 'invalid'
  /** no such task */
  | 'unknown'
  /** the task is not in a state that allows this */
  | 'conflict'
  /** no room for one more waiting task (--max-queue) */
  | 'full'
  /** the task records cannot be written now (disk full) */
  | 'unwritable'

const STATUS: Record<Refusal, number> = { invalid: 400, unknown: 404, conflict: 409, full: 503, unwritable: 507 }

/** A refusal of the node's components, with a message a user can act on. */
export class TaskError extends Error {
  readonly kind: Refusal
  readonly extra: Record<string, unknown>

  constructor (kind: Refusal, message: string, extra: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, options)
    this.kind = kind
    this.extra = extra
  }
}

/**
 * The task records cannot be written (the disk is full, or failing). Changes to existing tasks
 * are kept and written once space allows.
 */
export class StoreUnwritable extends TaskError {
  constructor (cause: Error) {
    super('unwritable', `the node's disk is full or failing: it cannot write its task records now (${cause.message}); try again later or another node`, {}, { cause })
  }
}

/** The HTTP form of an error thrown below the edge: a refusal keeps its message, anything else is 500 and says nothing of itself. */
export function toHttpError (err: unknown): HttpError {
  if (err instanceof HttpError) return err
  if (err instanceof TaskError) return new HttpError(STATUS[err.kind], err.message, err.extra)
  return new HttpError(500, 'internal error')
}
