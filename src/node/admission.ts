import { TaskError } from './errors.js'

/** A place in the queue, held for a task whose request is still being read; the runner takes it over when it stores the task. */
export interface Pass {
  /** gives the place up (the request failed): the first waiting request gets it; harmless once taken or given up */
  release (): void
}

export interface Admission {
  /** a place now, if one is free and no request waits before this one */
  now (): Pass | undefined
  /**
   * a place once one frees, first come first served, within `ms`; rejects with a `full` TaskError
   * after that (at once for 0, or when `maxWaiting` requests wait already), or when `signal` aborts
   */
  wait (ms: number, signal?: AbortSignal): Promise<Pass>
  /** places held by passes */
  held (): number
  /** the runner stores the task of `pass`: its place is counted as the task's from now on */
  take (pass: Pass | undefined): void
  /** places may have freed: lets the first waiting requests in */
  wake (): void
  /** refuses every waiting request */
  close (): void
}

interface Waiter { resolve (p: Pass): void; reject (e: Error): void; timer: NodeJS.Timeout; signal?: AbortSignal; onAbort?: () => void }

/**
 * Admission to a bounded queue. A request that finds the queue full waits, unread, for a place
 * (as a proxy's queue timeout does) instead of being refused at once: a client that is refused
 * asks again at once, and under a sustained load those refusals take the CPU the running tasks
 * need. Waiting costs nothing, and lets in new work as fast as the node finishes it.
 */
export function createAdmission (config: { maxWaiting: number }, deps: { free: () => number, why: () => string }): Admission {
  let held = 0
  let closed = false
  const waiters: Waiter[] = []
  const taken = new WeakSet<Pass>()

  const issue = (): Pass => {
    held++
    const pass: Pass = {
      release () {
        if (taken.has(pass)) return
        taken.add(pass)
        held--
        wake()
      },
    }
    return pass
  }
  const settle = (w: Waiter) => {
    clearTimeout(w.timer)
    if (w.onAbort) w.signal!.removeEventListener('abort', w.onAbort)
  }
  function wake () {
    while (waiters.length > 0 && deps.free() - held > 0) {
      const w = waiters.shift()!
      settle(w)
      w.resolve(issue())
    }
  }
  const refusal = () => new TaskError('full', deps.why())

  return {
    now: () => !closed && waiters.length === 0 && deps.free() - held > 0 ? issue() : undefined,
    wait (ms, signal) {
      const pass = this.now()
      if (pass) return Promise.resolve(pass)
      if (closed || ms <= 0 || waiters.length >= config.maxWaiting) return Promise.reject(refusal())
      return new Promise<Pass>((resolve, reject) => {
        const w: Waiter = {
          resolve,
          reject,
          timer: setTimeout(() => {
            waiters.splice(waiters.indexOf(w), 1)
            settle(w)
            reject(refusal())
          }, ms),
        }
        if (signal) {
          w.signal = signal
          w.onAbort = () => {
            waiters.splice(waiters.indexOf(w), 1)
            settle(w)
            reject(signal.reason)
          }
          signal.addEventListener('abort', w.onAbort, { once: true })
        }
        waiters.push(w)
      })
    },
    held: () => held,
    take (pass) {
      if (!pass || taken.has(pass)) return
      taken.add(pass)
      held--
    },
    wake,
    close () {
      closed = true
      for (const w of waiters.splice(0)) {
        settle(w)
        w.reject(new TaskError('full', 'the node is stopping; try another node'))
      }
    },
  }
}
