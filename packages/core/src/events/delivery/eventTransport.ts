// One events request with every way it can end turned into a value the queue acts on: delivered,
// too large (split it), rejected for good (drop it), refused (the URL or the key is wrong: keep the
// events, back off, report it), or worth retrying.
import type { HoldfastError } from '../../platform/errors'
import type { PlatformKit } from '../../platform/kit'
import type { Clock, HeadersOption } from '../../types'

/**
 * Browsers refuse a `keepalive` request once the bodies of all of a page's keepalive requests in
 * flight pass 64 KiB (Fetch spec, "keepalive"). Requests are sent one at a time, each under this.
 */
export const KEEPALIVE_MAX_BYTES = 60_000

/**
 * How a request ended. `refused`: 401, 403, 404, 405 or 410 say the events URL or its key is wrong,
 * not the events, so they are kept and retried with backoff like a transient failure. So does a
 * redirect, or a 2xx whose body is an HTML page: a captive portal or an auth proxy's login page
 * answered, not an events sink.
 */
export type PostResult =
  | { kind: 'ok' }
  | { kind: 'too-large'; error: HoldfastError }
  | { kind: 'rejected'; error: HoldfastError }
  | { kind: 'refused'; error: HoldfastError }
  | { kind: 'retry'; error: HoldfastError }
  | { kind: 'aborted' }

/** Options of `postEvents`. */
export interface PostEventsOptions {
  fetch: typeof fetch
  url: string
  headers?: HeadersOption
  /** The request body, `{"events":[...]}`, serialised by the caller. */
  body: string
  timeoutMs: number
  /** Ask the browser to finish the request even if the page goes away (only when the body fits). */
  keepalive: boolean
  /** Aborts from outside (`close()` running out of time); the result is `aborted`. */
  signal: AbortSignal
  clock: Clock
  /** The request, the error type and `Retry-After` (platform/kit.ts). */
  kit: PlatformKit
}

const REFUSED = new Set([401, 403, 404, 405, 410])
const REJECTED = new Set([400, 422])

/**
 * `url` with runs of slashes in its path collapsed: `https://x.example/` + `/holdfast/v1/events`
 * must reach `/holdfast/v1/events`, not get a 404 for `//holdfast/v1/events`. The `//` of the
 * scheme (or of a protocol-relative URL) and the query are left alone.
 */
export function normalizeUrl(url: string): string {
  const m = /^((?:[a-z][a-z\d+.-]*:)?\/\/[^/?#]*)?([^?#]*)(.*)$/is.exec(url)
  return m ? (m[1] ?? '') + m[2].replace(/\/{2,}/g, '/') + m[3] : url
}

/** Whether a failed request said the events URL or its key is wrong (the events are fine). */
export function isRefusal(error: HoldfastError): boolean {
  // Below 400 only a redirect or a page that is not a sink's answer is made into an error.
  return error.httpStatus !== undefined && (REFUSED.has(error.httpStatus) || error.httpStatus < 400)
}

/** Sends one batch; never rejects. */
export async function postEvents(options: PostEventsOptions): Promise<PostResult> {
  const { body, kit } = options
  const outcome = await kit.postJson({
    fetch: options.fetch,
    url: options.url,
    body,
    headers: options.headers,
    timeoutMs: options.timeoutMs,
    signal: options.signal,
    keepalive: options.keepalive && byteLength(body) <= KEEPALIVE_MAX_BYTES,
    clock: options.clock,
    // A portal's redirect to its login page must not be followed to a 200 that looks delivered
    // (nor hand the events to the portal): it comes back as the answer and is refused below.
    redirect: 'manual',
  })
  if (outcome.kind === 'aborted') return outcome
  // Network errors, timeouts and a throwing headers callback may all work next time.
  if (outcome.kind === 'error') return { kind: 'retry', error: outcome.error }
  const { response, text } = outcome
  const status = response.status
  // A browser shows a manual redirect as an opaque answer with status 0, Node as the 3xx itself.
  // Any 2xx is a delivery (CONTRACT §2.2), with or without a body, except an HTML page: what a
  // captive portal or a misrouted proxy answers every request with. A sink's short "ok" still is.
  const redirect = response.type === 'opaqueredirect' || (status > 299 && status < 400)
  if (redirect || (status < 300 && /^\s*</.test(text) && /html/i.test(response.headers.get('Content-Type') ?? '')))
    return {
      kind: 'refused',
      error: new kit.HoldfastError('HTTP', `the events URL answered ${redirect ? 'a redirect' : 'an HTML page'} (HTTP ${status}), not a sink: a captive portal?`, { httpStatus: status }),
    }
  if (status >= 200 && status < 300) return { kind: 'ok' }
  // A date is read against the server's own Date header: a client clock hours off changes nothing.
  const retryAfterMs = kit.parseRetryAfter(response.headers.get('Retry-After'), options.clock.now(), response.headers.get('Date'))
  const detail = text ? `: ${text.slice(0, 200)}` : ''
  if (REFUSED.has(status)) {
    const code = status === 401 || status === 403 ? 'UNAUTHORIZED' : 'HTTP'
    const message = `the events URL or its key was refused (HTTP ${status} from ${options.url})${detail}`
    return { kind: 'refused', error: new kit.HoldfastError(code, message, { httpStatus: status, retryAfterMs }) }
  }
  const error = kit.httpError(status, detail, retryAfterMs)
  if (status === 413) return { kind: 'too-large', error }
  // 400 and 422 say this batch is bad: dropping it keeps one poison batch from blocking the rest.
  if (REJECTED.has(status) || !kit.isRetryable(error)) return { kind: 'rejected', error }
  return { kind: 'retry', error }
}

/**
 * Splits a batch into groups whose request bodies stay under KEEPALIVE_MAX_BYTES, in order. An
 * event too large on its own gets a group of its own (and is sent without keepalive).
 */
export function splitForKeepalive<T extends { event: unknown }>(items: T[]): T[][] {
  const groups: T[][] = []
  let group: T[] = []
  let size = '{"events":[]}'.length
  for (const item of items) {
    const bytes = byteLength(JSON.stringify(item.event)) + 1
    if (group.length > 0 && size + bytes > KEEPALIVE_MAX_BYTES) {
      groups.push(group)
      group = []
      size = '{"events":[]}'.length
    }
    group.push(item)
    size += bytes
  }
  if (group.length > 0) groups.push(group)
  return groups
}

function byteLength(text: string): number {
  return new TextEncoder().encode(text).length
}
