import type { HoldfastError } from './errors'
import type { Clock } from './types'

/** Backoff settings shared by flag fetches and event delivery. */
export interface BackoffOptions {
  /** First delay. Default 1,000 ms. */
  baseMs?: number
  /** Ceiling. Default 60,000 ms. */
  maxMs?: number
}

/**
 * Delay before retry number `attempt` (0-based): capped exponential with "equal jitter"
 * (half fixed, half random), so a fleet of clients that failed together does not retry together,
 * yet no client retries immediately.
 */
export function backoffDelay(attempt: number, random: () => number = Math.random, options: BackoffOptions = {}): number {
  const base = options.baseMs ?? 1000
  const max = options.maxMs ?? 60_000
  const ceiling = Math.min(max, base * 2 ** Math.min(attempt, 30))
  return Math.round(ceiling / 2 + (ceiling / 2) * random())
}

// A server asking for more than a day is almost certainly misconfigured; clamp so a client is
// never parked for good by one header.
const MAX_RETRY_AFTER_MS = 24 * 60 * 60 * 1000

/**
 * Parses `Retry-After` into milliseconds from `now`: delta-seconds (`120`), an HTTP-date
 * (`Wed, 21 Oct 2015 07:28:00 GMT`) or ISO 8601 (`2015-10-21T07:28:00Z`, which some servers send
 * though RFC 9110 does not define it). Returns undefined for anything else; a date in the past is 0.
 */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  if (value == null) return undefined
  const text = value.trim()
  if (text === '') return undefined
  if (/^\d+(\.\d+)?$/.test(text)) return Math.min(MAX_RETRY_AFTER_MS, Math.round(Number(text) * 1000))
  // Only date-like strings: Date.parse accepts odd inputs such as "1" or "soon 2".
  if (!/[a-z]{3},|\d{4}-\d{2}-\d{2}/i.test(text)) return undefined
  const at = Date.parse(text)
  if (Number.isNaN(at)) return undefined
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, at - now))
}

/**
 * The retry state of one sender (flag fetches, event delivery), so both back off alike: the
 * attempt count behind the backoff, the deadline a server set with `Retry-After`, and the timer
 * of the scheduled retry.
 */
export interface Retrier {
  /** Schedules `retry` after the error's `Retry-After`, or the next backoff delay; returns the delay. */
  schedule(error: HoldfastError, retry: () => void): number
  /** A `Retry-After` is still running: only the retry it scheduled may ask the server again. */
  waiting(): boolean
  /** A retry is scheduled. */
  pending(): boolean
  /** An attempt is starting: the scheduled retry and the `Retry-After` are used up (the count stays). */
  consume(): void
  /** Progress was made: the next failure backs off from the start again. */
  resetAttempts(): void
  /** Everything settled (a success, a new user, close()): count, deadline and timer are cleared. */
  reset(): void
}

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
      const delay = error.retryAfterMs ?? backoffDelay(attempt, options.random, options.backoff)
      attempt++
      if (error.retryAfterMs !== undefined) until = clock.now() + error.retryAfterMs
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
