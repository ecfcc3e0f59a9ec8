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
