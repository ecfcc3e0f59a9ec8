// The one error type of Holdfast and the one rule for "may trying again help?", shared by flag
// fetches and event delivery so both back off alike.
import type { ErrorCode } from '../types'

/**
 * The one error type of Holdfast. Runtime failures never throw into the app: they become a
 * `HoldfastError` held in `Status.error` (as plain data) or passed to the logger. `code` is one of
 * `ErrorCode`; `httpStatus` is set for answers with an HTTP status; `retryAfterMs` is what the
 * server asked for with `Retry-After` (already read against its `Date` header), when it did.
 */
export class HoldfastError extends Error {
  /** What failed, as one of `ErrorCode`: what an app branches on (`isRetryable` reads it too). */
  readonly code: ErrorCode
  /** The HTTP status of the answer that failed, when there was one (not for network errors or timeouts). */
  readonly httpStatus?: number
  /** Milliseconds the server asked us to wait (`Retry-After`), when it said so. */
  readonly retryAfterMs?: number

  constructor(code: ErrorCode, message: string, options: { httpStatus?: number; retryAfterMs?: number } = {}) {
    super(message)
    this.name = 'HoldfastError'
    this.code = code
    this.httpStatus = options.httpStatus
    this.retryAfterMs = options.retryAfterMs
  }
}

/**
 * Whether trying the same request again later can succeed: network errors, timeouts, malformed
 * or empty answers, and any HTTP status but 400/401/403/413 (408, 429, 5xx, the other 4xx, and a
 * redirect not followed, a browser's status 0: a captive portal's, gone once the user signs in).
 * Shared by flag fetches and event delivery so both back off alike. Anything that is not a
 * `HoldfastError` counts as not retryable (a programming error, not a transient condition).
 */
export function isRetryable(error: HoldfastError): boolean {
  switch (error?.code) {
    case 'NETWORK':
    case 'TIMEOUT':
    case 'INVALID_RESPONSE':
    case 'EMPTY_RESPONSE':
      return true
    case 'HTTP': {
      // CONTRACT §2.1: every status but those is transient. A 3xx (status 0 in a browser) was a wait
      // for the next trigger: a page behind a captive portal stayed stale until a focus or a reload.
      const s = error.httpStatus
      return s !== 400 && s !== 401 && s !== 403 && s !== 413
    }
    default:
      return false
  }
}

/** The plain-data form kept in `Status.error`. */
export function toStatusError(error: HoldfastError): { code: string; message: string; httpStatus?: number } {
  return error.httpStatus === undefined
    ? { code: error.code, message: error.message }
    : { code: error.code, message: error.message, httpStatus: error.httpStatus }
}

/** Maps an HTTP status to the client's error for it: 401/403 `UNAUTHORIZED`, 400 `INVALID_CONTEXT`, else `HTTP`. */
export function httpError(status: number, detail: string, retryAfterMs?: number): HoldfastError {
  if (status === 401 || status === 403)
    return new HoldfastError('UNAUTHORIZED', `credentials rejected (HTTP ${status})${detail}`, { httpStatus: status })
  if (status === 400) return new HoldfastError('INVALID_CONTEXT', `context rejected (HTTP 400)${detail}`, { httpStatus: status })
  return new HoldfastError('HTTP', `HTTP ${status}${detail}`, { httpStatus: status, retryAfterMs })
}
