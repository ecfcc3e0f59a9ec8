// One OFREP bulk evaluation request (CONTRACT §2.1), with every way it can go wrong turned into a
// value. Shared by the client and by `fetchBootstrap`, so both read responses the same way.
import { parseRetryAfter } from './backoff'
import { HoldfastError, httpError } from './errors'
import { postJson } from './postJson'
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
  try {
    body = JSON.stringify({ context: options.context })
  } catch (error) {
    return { kind: 'error', error: new HoldfastError('INVALID_CONTEXT', `the context cannot be serialised: ${String(error)}`) }
  }
  const outcome = await postJson({
    fetch: options.fetch,
    url: bulkEndpoint(options.url),
    body,
    headers: options.headers,
    extraHeaders: options.etag === undefined ? { Accept: 'application/json' } : { Accept: 'application/json', 'If-None-Match': options.etag },
    timeoutMs: options.timeoutMs,
    signal: options.signal,
  })
  if (outcome.kind !== 'response') return outcome
  const { response, text } = outcome
  const etag = response.headers.get('ETag') ?? undefined
  if (response.status === 304) return { kind: 'not-modified', etag }
  if (response.status !== 200) {
    const retryAfterMs = parseRetryAfter(response.headers.get('Retry-After'), options.now())
    return { kind: 'error', error: httpError(response.status, describeErrorBody(text), retryAfterMs) }
  }
  return readBody(text, response.headers.get('Content-Type'), etag)
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
