// Reading the options an app passes to `createClient`, as a hostile reviewer would: a missing or
// malformed `url` is a programmer mistake and throws a clear message at creation; a numeric option
// that is `NaN`, zero, negative or `Infinity` (an unset environment variable) falls back to its
// default with a warning, so it can neither start a polling storm nor time out every request.
import { urlProblem } from '../protocol/fetchFlags'
import { isContext } from '../protocol/readers'
import type { ClientOptions, Logger } from '../types'

/** Polling faster than this is a storm, not a refresh. */
export const MIN_POLL_MS = 1000

/** The longest a request (and close()'s flush, fetchBootstrap's render) may wait: a minute, not days. */
export const MAX_TIMEOUT_MS = 60_000

/** The numeric options, read. */
export interface ReadOptions {
  timeoutMs: number
  pollMs: number
}

/**
 * Throws a `TypeError` naming `createClient` (`<FlagProvider>` renames it when it created the
 * client) for a missing/malformed `url` or a context without a string `targetingKey`.
 */
export function checkOptions(options: ClientOptions, caller = 'createClient'): void {
  if (!options || typeof options !== 'object') throw new TypeError(`[holdfast] ${caller} needs options with a \`url\` and a \`context\``)
  const problem = urlProblem(options.url)
  if (problem) throw new TypeError(`[holdfast] ${caller}: \`url\` ${problem}`)
  if (!isContext(options.context)) throw new TypeError(`[holdfast] ${caller} needs a \`context\` with a string \`targetingKey\``)
}

/** Reads the numeric options; anything unusable falls back to its default with a warning. */
export function readNumbers(options: ClientOptions, logger: Logger): ReadOptions {
  // Number.MIN_VALUE as the least: any positive timeout, never 0. At most a minute: 1e10 (seconds
  // read as ms, "no timeout") held a request to a server that never answers, and close() with it,
  // for 24.8 days (timers hold 32 bits); over it is a minute, with a warning (Infinity: the default).
  const timeoutMs = readNumber(options.requestTimeoutMs, 5000, 'requestTimeoutMs', Number.MIN_VALUE, logger, MAX_TIMEOUT_MS)
  let pollMs = readNumber(options.refreshIntervalMs, 0, 'refreshIntervalMs', 0, logger)
  if (pollMs > 0 && pollMs < MIN_POLL_MS) {
    logger.warn(`refreshIntervalMs ${pollMs} raised to ${MIN_POLL_MS}`)
    pollMs = MIN_POLL_MS
  }
  return { timeoutMs, pollMs }
}

/**
 * A numeric option (of `createClient` or of `events`): `value` when it is a finite number from
 * `min` to `max`, `max` (with a warning) above it, `fallback` when it is undefined, else `fallback` with a warning naming `name` (an
 * unset environment variable must neither start a polling storm nor time out every request).
 */
export function readNumber(value: unknown, fallback: number, name: string, min: number, logger: Logger, max = Infinity): number {
  if (value === undefined) return fallback
  if (Number.isFinite(value) && (value as number) >= min) {
    if ((value as number) <= max) return value as number
    // Longer than allowed (120 s for a slow server): the most allowed, not a default 24 times shorter.
    fallback = max
  }
  logger.warn(`${name} ${String(value)} is not usable; using ${fallback}`)
  return fallback
}
