// Transitional: the event pipeline's retrier, until the events helper moves delivery onto
// platform/scheduler.ts. The delay rule itself (backoff, Retry-After floor) is the scheduler's
// `retryDelay`, so both senders already wait alike. Delete this file once nothing imports it.
import { retryDelay, type BackoffOptions } from './platform/backoff'
import type { HoldfastError } from './platform/errors'
import type { Clock } from './types'

export { backoffDelay, parseRetryAfter, retryDelay } from './platform/backoff'
export type { BackoffOptions } from './platform/backoff'

/** @deprecated use `createScheduler` (platform/scheduler.ts). */
export interface Retrier {
  schedule(error: HoldfastError, retry: () => void): number
  waiting(): boolean
  pending(): boolean
  consume(): void
  resetAttempts(): void
  reset(): void
}

/** @deprecated use `createScheduler` (platform/scheduler.ts). */
export function createRetrier(options: { clock: Clock; random: () => number; backoff?: BackoffOptions }): Retrier {
  const { clock } = options
  let attempt = 0
  let until = 0
  let timer: unknown
  const consume = () => {
    if (timer !== undefined) clock.clearTimeout(timer)
    timer = undefined
    until = 0
  }
  return {
    schedule(error, retry) {
      consume()
      const delay = retryDelay(error, attempt, options.random, options.backoff)
      attempt++
      if (error.retryAfterMs !== undefined) until = clock.now() + delay
      timer = clock.setTimeout(() => {
        timer = undefined
        retry()
      }, delay)
      return delay
    },
    waiting: () => clock.now() < until,
    pending: () => timer !== undefined,
    consume,
    resetAttempts: () => void (attempt = 0),
    reset() {
      consume()
      attempt = 0
    },
  }
}
