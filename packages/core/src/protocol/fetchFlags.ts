// One OFREP bulk evaluation request, with every way it can go wrong turned into a
// value. Shared by the client and by `fetchBootstrap`, so both read responses the same way.
import { parseRetryAfter } from '../platform/backoff'
import { HoldfastError, httpError } from '../platform/errors'
import { hashString } from '../platform/hash'
import { joinUrl, postJson } from '../platform/request'
import { parseBulkResponse, type UpstreamInfo } from './readers'
import type { Clock, EvaluationContext, FlagEntry, HeadersOption } from '../types'

/** How one bulk request ended, as a value. */
export type FetchResult =
  | { kind: 'ok'; entries: FlagEntry[]; skipped: number; etag?: string; upstream?: UpstreamInfo; streams?: unknown[]; creds?: string }
  /** `etag`: the tag the request named, which the 304 confirmed (the answer's own may be its weak form), or the other tag the answer named instead. */
  | { kind: 'not-modified'; etag?: string; creds?: string }
  | { kind: 'error'; error: HoldfastError }
  | { kind: 'aborted' }

/** Options of `fetchFlags`: where, for whom, with which headers and ETag, within how long. */
export interface FetchFlagsOptions {
  fetch: typeof fetch
  url: string
  context: EvaluationContext
  headers?: HeadersOption
  etag?: string
  timeoutMs: number
  /** Aborts the request from outside (a context switch); the result is `aborted`. */
  signal?: AbortSignal
  now: () => number
  /** Query string to append (without `?`), e.g. `flagConfigEtag=…` on a refetch a stream notice asked for. */
  query?: string
  /** Timers of the timeout. Default: the real clock. */
  clock?: Pick<Clock, 'setTimeout' | 'clearTimeout'>
}

/** The OFREP bulk evaluation path under a base URL. */
export const BULK_PATH = '/ofrep/v1/evaluate/flags'

/**
 * `{base}/ofrep/v1/evaluate/flags`, whatever trailing slashes or surrounding whitespace (an
 * environment variable's newline) the base has. A query on the base (`?env=prod`) stays the
 * query, after the path, with `query` added to it; a fragment is never sent.
 */
export function bulkEndpoint(url: string, query?: string): string {
  const [base, search] = url.trim().replace(/#.*/, '').split(/\?(.*)/)
  const q = search ? (query ? `${search}&${query}` : search) : query
  return joinUrl(base, BULK_PATH) + (q ? `?${q}` : '')
}

/**
 * Why `url` cannot be an OFREP base URL, or undefined when it can: it must be absolute with an
 * http(s) scheme, or a path from the page's origin starting with `/` (a same-origin proxy);
 * `flags.example.com` or `localhost:8787` would be read relative to the page and 404 later. It
 * must not already end in the endpoint path (the client appends `/ofrep/v1/evaluate/flags`).
 */
export function urlProblem(url: unknown): string | undefined {
  if (typeof url !== 'string' || !url.trim()) return 'is missing: give the OFREP base URL, e.g. https://flags.example.com'
  if (!/^(https?:\/\/[^/]|\/)/i.test(url.trim())) return `"${url}" has no http:// or https:// scheme: try https://${url}`
  if (/\/ofrep(\/v1(\/evaluate(\/flags)?)?)?\/*$/i.test(url.split(/[?#]/)[0]))
    return `"${url}" is the endpoint path; give only the base URL: ${url.replace(/\/ofrep(\/.*)?$/i, '')}`
}

/** An ETag compared weakly (RFC 9110): `W/"x"` is the same tag as `"x"`. */
const weak = (tag: string) => tag.replace(/^W\//, '')

/** One OFREP bulk evaluation request; never rejects. */
export async function fetchFlags(options: FetchFlagsOptions): Promise<FetchResult> {
  let body: string
  try {
    body = JSON.stringify({ context: options.context })
  } catch (error) {
    return { kind: 'error', error: new HoldfastError('INVALID_CONTEXT', `the context cannot be serialised: ${String(error)}`) }
  }
  const sent = options.etag !== undefined && /^[\t\x20-\x7e]{1,1024}$/.test(options.etag)
  const outcome = await postJson({
    fetch: options.fetch,
    url: bulkEndpoint(options.url, options.query),
    body,
    headers: options.headers,
    // An ETag that cannot go in a header (a bootstrap's with a newline or a non-Latin-1 character,
    // one too long for servers to take: 431) is not sent: the full answer replaces it. Sent, it failed
    // every request for this user for ever.
    extraHeaders: sent ? { Accept: 'application/json', 'If-None-Match': options.etag! } : { Accept: 'application/json' },
    timeoutMs: options.timeoutMs,
    signal: options.signal,
    clock: options.clock,
    // Not followed: fetch re-sends a POST redirected with 307/308 to another origin with every
    // header but Authorization (an X-API-Key) and the context in its body (undici in Node, React
    // Native; a browser too, when that origin allows it). The 3xx (a browser's opaque answer, status
    // 0) is a failure that names it; the URL to configure is the one the redirect points to.
    redirect: 'manual',
  })
  if (outcome.kind !== 'response') return outcome
  const { response, text } = outcome
  // The configured headers this answer was fetched with, hashed: tabs share it only with tabs whose
  // own requests went out with the same (live/liveSession.ts), and never see a raw token.
  const creds = hashString(outcome.sent + '')
  // A custom `fetch` (a polyfill, a wrapper, a test double) may answer something that is not quite
  // a Response (no `headers`, a `get` that throws): an unreadable answer, tried again like one,
  // where before the exception left the status `loading` with nothing scheduled.
  try {
    const { status } = response
    const etag = response.headers.get('ETag') ?? undefined
    // A 304 to a request that named no snapshot (an ETag held but not sendable, a full refetch)
    // confirms nothing: it would pass what is held off as the server's current snapshot. One naming
    // another tag (RFC 9110: it carries the current snapshot's; a server or CDN that rotated its
    // tags) confirms only the snapshot that tag names: passed on with it, so the driver asks again
    // without If-None-Match unless that is the snapshot held (sync.ts). `W/"x"` (a CDN weakens the
    // tags of what it compresses) is the same tag as `"x"`.
    if (status === 304)
      return sent ? { kind: 'not-modified', etag: etag && weak(etag) !== weak(options.etag!) ? etag : options.etag, creds } : invalid('a 304 confirmed no snapshot asked about')
    if (status !== 200) {
      // A date in Retry-After is read against the server's own Date header, so a client clock
      // that is hours off does not turn "in 30 s" into "in 3 hours" (or "now").
      const retryAfterMs = parseRetryAfter(response.headers.get('Retry-After'), options.now(), response.headers.get('Date'))
      const moved = !status || (status > 299 && status < 400)
      return { kind: 'error', error: httpError(status, moved ? ': a redirect, not followed' : describeErrorBody(text), retryAfterMs) }
    }
    return readBody(text, response.headers.get('Content-Type'), etag, creds)
  } catch (error) {
    return invalid(String(error))
  }
}

function readBody(text: string, contentType: string | null, etag: string | undefined, creds: string): FetchResult {
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
  const result: FetchResult = { kind: 'ok', ...parsed, etag, creds }
  // OFREP 0.3.0 `eventStreams`, read by the live-updates chunk (live/streamInfo.ts) when it loads.
  const { eventStreams } = json as { eventStreams?: unknown }
  if (Array.isArray(eventStreams)) result.streams = eventStreams
  return result
}

function invalid(message: string): FetchResult {
  return { kind: 'error', error: new HoldfastError('INVALID_RESPONSE', message) }
}

/** The server's `errorCode`/`errorDetails` when an error body carries them, for the message. */
function describeErrorBody(text: string): string {
  try {
    const body = JSON.parse(text) as { errorCode?: unknown; errorDetails?: unknown }
    const parts = [body.errorCode, body.errorDetails].filter((p) => typeof p === 'string' && p)
    // At most 200 characters, as an events error body (a stack trace or a dump is held in the status and logged).
    return parts.length ? `: ${parts.join(': ').slice(0, 200)}` : ''
  } catch {
    return ''
  }
}
