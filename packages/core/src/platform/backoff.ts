// How long to wait before asking again: capped exponential backoff with jitter, and the server's
// `Retry-After`, read so that neither a `0` nor a skewed client clock can turn it into a storm or a
// client parked for hours.
import type { HoldfastError } from './errors'

/** Backoff settings shared by flag fetches and event delivery. */
export interface BackoffOptions {
  /** First delay, and the floor of any `Retry-After`. Default 1,000 ms. */
  baseMs?: number
  /** Ceiling. Default 60,000 ms. */
  maxMs?: number
}

/**
 * `value` when it is a finite number above 0, else `fallback`: the reading of every delay option.
 * Number.isFinite does not coerce: it is false for anything but a number.
 */
export const positiveOr = (value: unknown, fallback: number): number => (Number.isFinite(value) && (value as number) > 0 ? (value as number) : fallback)

/**
 * Delay before retry number `attempt` (0-based): capped exponential with "equal jitter"
 * (half fixed, half random), so a fleet of clients that failed together does not retry together,
 * yet no client retries immediately. Defaults: base 1,000 ms, cap 60,000 ms, `Math.random`.
 * A `NaN`, zero or negative option falls back to its default.
 */
export function backoffDelay(attempt: number, random: () => number = Math.random, options: BackoffOptions = {}): number {
  const base = positiveOr(options.baseMs, 1000)
  const max = Math.max(base, positiveOr(options.maxMs, 60_000))
  const ceiling = Math.min(max, base * 2 ** Math.min(Math.max(0, attempt || 0), 30))
  let r = 0.5
  try {
    const drawn = random()
    if (drawn >= 0 && drawn <= 1) r = drawn
  } catch {}
  return Math.round(ceiling / 2 + (ceiling / 2) * r)
}

/**
 * The delay before the next try after `error`: the backoff for `attempt`, or the server's
 * `Retry-After` when that is longer. A `Retry-After` below the base delay (e.g. `0`) is raised to
 * it, so a failing server that says "now" cannot cause a tight loop.
 */
export function retryDelay(error: HoldfastError, attempt: number, random: () => number = Math.random, options: BackoffOptions = {}): number {
  const backoff = backoffDelay(attempt, random, options)
  if (error.retryAfterMs === undefined) return backoff
  return Math.max(backoff, positiveOr(options.baseMs, 1000), Math.min(error.retryAfterMs, MAX_SERVER_WAIT_MS))
}

/**
 * A server's wait is honoured up to an hour (as the relay's event forwarding honours its sink's):
 * CONTRACT §2.1 says honour `Retry-After`, and a server shedding load for ten minutes means ten
 * minutes, not the backoff's one. Past an hour a client asks once an hour. Read as given,
 * `Retry-After: 86400` (or 99999999, or a date years ahead from a misconfigured proxy) held every
 * request for a day, a login's too: the new user saw defaults and `refresh()` did nothing.
 */
export const MAX_SERVER_WAIT_MS = 3_600_000

// A server asking for more than a day is almost certainly misconfigured; clamp so a client is
// never parked for good by one header.
const MAX_RETRY_AFTER_MS = 24 * 60 * 60 * 1000

// RFC 9110 §5.6.7: recipients accept all three HTTP-date forms, all UTC. The asctime form
// (`Sun Nov  6 08:49:37 1994`) names no zone, and Date.parse reads it as local time (V8): hours off
// outside UTC. It is the one form that ends in its year. An ISO date-time without a zone (Java's
// LocalDateTime prints one) is read as local time too, so it gets a `Z`. Only date-like strings
// (NaN otherwise): Date.parse accepts odd inputs such as "1" (2001) or "soon 2", in `Retry-After`
// and in `Date` alike.
const httpDate = (text: string): number =>
  /[a-z]{3},|\d{4}-\d\d-\d\d|:\d\d \d{4}$/i.test(text) ? Date.parse(text.replace(/:\d\d \d{4}$/, '$& GMT').replace(/T[\d:.]+$/, '$&Z')) : NaN

/**
 * Parses `Retry-After` into milliseconds: delta-seconds (`120`), an HTTP-date in any of its three
 * forms (`Wed, 21 Oct 2015 07:28:00 GMT`, read as UTC) or ISO 8601 (`2015-10-21T07:28:00Z`, which some servers send
 * though RFC 9110 does not define it). A date is read against `serverDate` (the response's `Date`
 * header) when that parses, so a client clock hours off does not change the wait; otherwise
 * against `now`. Returns undefined for anything else; a date in the past is 0; at most a day.
 */
export function parseRetryAfter(value: string | null | undefined, now: number, serverDate?: string | null): number | undefined {
  // null, undefined and '' match neither form below.
  const text = String(value).trim()
  if (/^\d+(\.\d+)?$/.test(text)) return Math.min(MAX_RETRY_AFTER_MS, Math.round(Number(text) * 1000))
  const at = httpDate(text)
  if (Number.isNaN(at)) return undefined
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, at - (httpDate(String(serverDate)) || now)))
}
