// One OFREP bulk evaluation request (CONTRACT §2.1), with every way it can go wrong turned into a
// value. Shared by the client and by `fetchBootstrap`, so both read responses the same way.
import { parseRetryAfter } from './backoff'
import { HoldfastError, httpError } from './errors'
import { parseBulkResponse } from './schemas'
import type { EvaluationContext, FlagEntry } from './types'

export type FetchResult =
  | { kind: 'ok'; entries: FlagEntry[]; skipped: number; etag?: string }
  | { kind: 'not-modified'; etag?: string }
  | { kind: 'error'; error: HoldfastError }
  | { kind: 'aborted' }

export interface FetchFlagsOptions {
  fetch: typeof fetch
  url: string
  context: EvaluationContext
  headers?: Record<string, string> | (() => Record<string, string>)
  etag?: string
  timeoutMs: number
  /** Aborts the request from outside (a context switch); the result is `aborted`. */
  signal?: AbortSignal
  now: () => number
}

/** `{base}/ofrep/v1/evaluate/flags`, whatever trailing slashes the base has. */
export function bulkEndpoint(url: string): string {
  return `${url.replace(/\/+$/, '')}/ofrep/v1/evaluate/flags`
}

export async function fetchFlags(options: FetchFlagsOptions): Promise<FetchResult> {
  let body: string
  let headers: Record<string, string>
  try {
    body = JSON.stringify({ context: options.context })
    const extra = typeof options.headers === 'function' ? options.headers() : options.headers
    headers = { ...extra, 'Content-Type': 'application/json', Accept: 'application/json' }
  } catch (error) {
    return { kind: 'error', error: new HoldfastError('INVALID_CONTEXT', `could not build the request: ${String(error)}`) }
  }
  if (options.etag !== undefined) headers['If-None-Match'] = options.etag

  const controller = new AbortController()
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    controller.abort()
  }, options.timeoutMs)
  const onOuterAbort = () => controller.abort()
  options.signal?.addEventListener('abort', onOuterAbort)
  try {
    const response = await options.fetch(bulkEndpoint(options.url), { method: 'POST', headers, body, signal: controller.signal })
    const etag = response.headers.get('ETag') ?? undefined
    if (response.status === 304) return { kind: 'not-modified', etag }
    // Reading the body is part of the request: a hang or reset here is a timeout or network error.
    const text = await response.text()
    if (response.status !== 200) {
      const retryAfterMs = parseRetryAfter(response.headers.get('Retry-After'), options.now())
      return { kind: 'error', error: httpError(response.status, describeErrorBody(text), retryAfterMs) }
    }
    return readBody(text, response.headers.get('Content-Type'), etag)
  } catch (error) {
    if (options.signal?.aborted && !timedOut) return { kind: 'aborted' }
    if (timedOut) return { kind: 'error', error: new HoldfastError('TIMEOUT', `no answer within ${options.timeoutMs} ms`) }
    return { kind: 'error', error: new HoldfastError('NETWORK', `request failed: ${errorMessage(error)}`) }
  } finally {
    clearTimeout(timer)
    options.signal?.removeEventListener('abort', onOuterAbort)
  }
}

function readBody(text: string, contentType: string | null, etag: string | undefined): FetchResult {
  // A captive portal or a proxy error page answers 200 with HTML: that is not a flag snapshot.
  if (contentType && !/json/i.test(contentType))
    return invalid(`expected JSON, got ${contentType.split(';')[0]}`)
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return invalid('the body is not JSON')
  }
  const parsed = parseBulkResponse(json)
  if (!parsed) return invalid('the body has no "flags" array')
  const result: FetchResult = { kind: 'ok', entries: parsed.entries, skipped: parsed.skipped }
  if (etag !== undefined) result.etag = etag
  return result
}

function invalid(message: string): FetchResult {
  return { kind: 'error', error: new HoldfastError('INVALID_RESPONSE', message) }
}

/** The server's `errorCode`/`errorDetails` when an error body carries them, for the message. */
function describeErrorBody(text: string): string {
  try {
    const body = JSON.parse(text) as { errorCode?: unknown; errorDetails?: unknown }
    const parts = [body.errorCode, body.errorDetails].filter((p) => typeof p === 'string')
    return parts.length ? `: ${parts.join(': ')}` : ''
  } catch {
    return ''
  }
}

function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause
    return cause instanceof Error ? `${error.message} (${cause.message})` : error.message
  }
  return String(error)
}
