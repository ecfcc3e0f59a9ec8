// One HTTP request to whatever the relay takes its flags from, with every way it can go wrong
// turned into a value. Shared by the --flags-url poller and the --upstream proxy.
import { parseRetryAfter } from '@holdfast/core'

/** How long one upstream request may take by default: 5,000 ms. */
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 5000

/** The largest upstream body read: 16 MiB. A bigger one is a failure, not an out-of-memory. */
export const MAX_UPSTREAM_BYTES = 16 * 1024 * 1024

/** A failed upstream attempt, by kind (the `lastError.kind` of the status, a metrics label). */
export type UpstreamFailureKind = 'network' | 'timeout' | 'http' | 'unauthorized' | 'invalid' | 'too-large' | 'empty' | 'shrink' | 'rejected'

/** What one attempt produced. `rejected` is an upstream 4xx that blames the request (e.g. a 400). */
export type UpstreamFetchResult =
  | { kind: 'ok'; status: number; text: string; contentType: string | undefined; etag: string | undefined }
  | { kind: 'not-modified'; etag: string | undefined }
  | { kind: 'failed'; failure: UpstreamFailureKind; message: string; httpStatus?: number; text?: string; retryAfterMs?: number }

/** Options of {@link upstreamFetch}. */
export interface UpstreamFetchOptions {
  url: string
  method: 'GET' | 'POST'
  body?: string
  headers?: Record<string, string>
  etag?: string
  timeoutMs?: number
  fetch?: typeof fetch
  /** Aborts the request from outside (the server closing); the result is a `network` failure. */
  signal?: AbortSignal
  /**
   * `follow` (default): redirects are followed wherever they go, but `headers` (an API key, a
   * forwarded `Authorization`) only while they stay on the origin asked for: fetch itself drops
   * only `Authorization` on the way to another origin, and would hand any other key to whatever
   * host a redirect names. `same-host`: only to the same host; a redirect to another host is an
   * `http` failure and is not followed, so the headers never reach it. Either way a POST is
   * followed only through 307/308 (which keep the method and body), never from https to http,
   * and at most 5 times.
   */
  redirects?: 'follow' | 'same-host'
}

/** How many redirects are followed. */
const MAX_REDIRECTS = 5

/**
 * Performs the request. Never rejects. 304 is `not-modified` when it answers the `etag` sent (an
 * `invalid` failure without one, or with another ETag); 401/403 `unauthorized`; 408/429/5xx
 * and other statuses `http`; 400/413/422/431 on a POST `rejected` (the request itself was refused,
 * the upstream is up). A 404 is an `http` failure: an OFREP server never answers it for a context, so
 * it means a wrong URL, which must not look like a healthy upstream. An `http` failure carries the
 * answer's `Retry-After` (delta-seconds or HTTP-date, read as @holdfast/core reads it, at most a
 * day) as `retryAfterMs`. A 200 is returned with its text; reading it as JSON is the caller's
 * business.
 */
export async function upstreamFetch(options: UpstreamFetchOptions): Promise<UpstreamFetchResult> {
  const doFetch = options.fetch ?? globalThis.fetch
  const controller = new AbortController()
  const timeoutMs = options.timeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS
  const timer = setTimeout(() => controller.abort(), timeoutMs)
  const stop = () => controller.abort()
  options.signal?.addEventListener('abort', stop)
  const headers: Record<string, string> = { Accept: 'application/json', ...options.headers }
  if (options.body !== undefined) headers['Content-Type'] = 'application/json'
  if (options.etag !== undefined) headers['If-None-Match'] = options.etag
  // The timeout and the close also bound a fetch that does not honour the signal (a host's
  // wrapper that builds its own request without it, a body that ignores it): before, such a
  // request never settled, and the poll, the status and close() waited on it for ever.
  const aborted = new Promise<never>((_, reject) => controller.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }))
  aborted.catch(() => {})
  try {
    const init: RequestInit = { method: options.method, headers, body: options.body, signal: controller.signal }
    const response = await Promise.race([follow(doFetch, options.url, init, options.redirects === 'same-host', Object.keys(options.headers ?? {})), aborted])
    if (typeof response === 'string') return { kind: 'failed', failure: 'http', message: response }
    const etag = response.headers.get('ETag') ?? undefined
    if (response.status === 304) {
      await response.body?.cancel().catch(() => {})
      // A 304 confirms only the snapshot the If-None-Match named. To a request that named none (a
      // confused cache in front of the upstream), or naming another tag than the one asked about,
      // it confirms nothing: read as "fresh", it would date a data dir or a snapshot as just fetched.
      if (options.etag === undefined) return { kind: 'failed', failure: 'invalid', message: `${redactUrl(options.url)} answered 304 to a request without If-None-Match`, httpStatus: 304 }
      if (etag !== undefined && weak(etag) !== weak(options.etag)) return { kind: 'failed', failure: 'invalid', message: `${redactUrl(options.url)} answered 304 with another ETag than the one asked about`, httpStatus: 304 }
      return { kind: 'not-modified', etag }
    }
    const text = await Promise.race([readCapped(response), aborted])
    if (text === undefined) return { kind: 'failed', failure: 'too-large', message: `the body is larger than ${MAX_UPSTREAM_BYTES} bytes`, httpStatus: response.status }
    if (response.status === 200) return { kind: 'ok', status: 200, text, contentType: response.headers.get('Content-Type') ?? undefined, etag }
    const detail = `${options.method} ${redactUrl(options.url)} answered ${response.status}`
    if (response.status === 401 || response.status === 403) return { kind: 'failed', failure: 'unauthorized', message: detail, httpStatus: response.status, text }
    // 413/431: the upstream's cap on a request's body or headers, below the relay's own (a client's
    // 60 KiB context, a huge forwarded key): that request's fault, as a 400 is, not the upstream's.
    if (options.method === 'POST' && [400, 413, 422, 431].includes(response.status)) return { kind: 'failed', failure: 'rejected', message: detail, httpStatus: response.status, text }
    const failed: UpstreamFetchResult = { kind: 'failed', failure: 'http', message: detail, httpStatus: response.status }
    const retryAfterMs = parseRetryAfter(response.headers.get('Retry-After'), Date.now(), response.headers.get('Date'))
    if (retryAfterMs !== undefined) failed.retryAfterMs = retryAfterMs
    return failed
  } catch (error) {
    if (options.signal?.aborted) return { kind: 'failed', failure: 'network', message: `${redactUrl(options.url)}: abandoned (the server is closing)` }
    if (controller.signal.aborted) return { kind: 'failed', failure: 'timeout', message: `no answer from ${redactUrl(options.url)} within ${timeoutMs} ms` }
    const cause = (error as { cause?: { code?: string; message?: string } }).cause
    return { kind: 'failed', failure: 'network', message: `${redactUrl(options.url)}: ${cause?.code ?? cause?.message ?? (error as Error).message}` }
  } finally {
    clearTimeout(timer)
    options.signal?.removeEventListener('abort', stop)
  }
}

// Follows redirects by hand: a POST only through 307/308, which keep the method and body; never
// from https to http; with `sameHostOnly`, not to another host (the reason is returned instead);
// otherwise to another origin without the `configured` headers. Returns the final response, or
// why a redirect was not followed.
async function follow(doFetch: typeof fetch, start: string, init: RequestInit, sameHostOnly: boolean, configured: string[]): Promise<Response | string> {
  let url = new URL(start)
  const origin = url.origin
  for (let hops = 0; ; hops++) {
    const headers = { ...(init.headers as Record<string, string>) }
    if (url.origin !== origin) for (const name of configured) delete headers[name]
    const response = await doFetch(url.href, { ...init, headers, redirect: 'manual' })
    // A host's fetch (a wrapper, a mock) answering something else: said as such, not as the
    // TypeError reading it would throw ("Cannot read properties of undefined (reading 'get')").
    if (typeof response?.status !== 'number' || typeof response.headers?.get !== 'function') throw new TypeError('the fetch option answered something that is not a Response')
    const location = response.headers.get('Location')
    const kept = response.status === 307 || response.status === 308 || (init.method === 'GET' && [301, 302, 303].includes(response.status))
    if (!kept || !location) return response
    await response.body?.cancel().catch(() => {})
    const next = new URL(location, url)
    if (hops >= MAX_REDIRECTS) return `${redactUrl(start)}: more than ${MAX_REDIRECTS} redirects`
    if (!/^https?:$/.test(next.protocol) || (url.protocol === 'https:' && next.protocol !== 'https:'))
      return `${redactUrl(url.href)} answered ${response.status}, a redirect to ${redactUrl(next.href)}: not followed (not https)`
    if (sameHostOnly && next.hostname !== url.hostname)
      return `${redactUrl(url.href)} answered ${response.status}, a redirect to another host (${redactUrl(next.href)}): not followed; give that URL if it is the right one`
    url = next
  }
}

// RFC 9110's weak comparison: `W/"x"` and `"x"` name the same snapshot.
const weak = (tag: string) => tag.trim().replace(/^W\//, '')

/**
 * Why `url` cannot be a source (`--flags-url`, `--upstream`, `--events-upstream`), after the
 * option's `name`, or undefined: it must parse, be http(s) and carry no `user:password` (fetch
 * refuses such a URL on every request, so a source given one would fail forever).
 */
export function httpUrlProblem(url: string, name: string): string | undefined {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return `${name} must be an http(s) URL, got "${redactUrl(url)}"`
  }
  if (!/^https?:$/.test(parsed.protocol) || !/^https?:\/\/[^/]/i.test(url)) return `${name} must be an http(s) URL, got "${redactUrl(url)}"`
  if (parsed.username !== '' || parsed.password !== '') return `${name} cannot carry user:password (fetch refuses such a URL): give the credentials in a header`
  return undefined
}

/** A URL fit for logs and the status: user, password and query string removed (tokens live there). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    parsed.username = ''
    parsed.password = ''
    if (parsed.search) parsed.search = '?…'
    return parsed.toString()
  } catch {
    return '(invalid URL)'
  }
}

async function readCapped(response: Response): Promise<string | undefined> {
  if (!response.body) return ''
  const reader = response.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > MAX_UPSTREAM_BYTES) {
      await reader.cancel().catch(() => {})
      return undefined
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/**
 * `{base}/ofrep/v1/evaluate/flags` for an upstream's OFREP base URL: trailing slashes dropped, a
 * query on the base kept as the query (after the path, not in front of it), a fragment never sent.
 */
export function ofrepEndpoint(base: string): string {
  try {
    const url = new URL(base.trim())
    url.pathname = `${url.pathname.replace(/\/+$/, '')}/ofrep/v1/evaluate/flags`
    url.hash = ''
    return url.href
  } catch {
    return `${base.replace(/\/+$/, '')}/ofrep/v1/evaluate/flags`
  }
}
