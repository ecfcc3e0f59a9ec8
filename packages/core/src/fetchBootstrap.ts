// Server-side: fetch one user's flags to render them into the first HTML. Uses only `fetch`, so
// it runs in Node 18+, edge runtimes and workers; it touches no DOM and no IndexedDB.
import { MAX_TIMEOUT_MS } from './flags/options'
import { fetchFlags } from './protocol/fetchFlags'
import { isContext } from './protocol/readers'
import type { Bootstrap, EvaluationContext, HeadersOption } from './types'

/** Options of `fetchBootstrap`. */
export interface FetchBootstrapOptions {
  /** OFREP base URL. */
  url: string
  /** The user to evaluate for. */
  context: EvaluationContext
  /** Sent with the request (e.g. an API key); a function is called once and may return a promise. Default: none. */
  headers?: HeadersOption
  /** How long the page render may wait for flags. Default 1,000 ms (also for NaN, 0, a negative number or Infinity); over 60,000 ms is 60,000 ms. */
  timeoutMs?: number
  /** The `fetch` the request goes through (tests, instrumentation). Default `globalThis.fetch`. */
  fetch?: typeof fetch
}

/**
 * Fetches a bootstrap snapshot for `context`. Resolves `null` on any failure — no usable context, down, slow, non-2xx,
 * unreadable body, a body over 16 MiB, a redirect to another host — and never rejects, so a flag
 * outage cannot fail a page render: the browser then falls back to its cache. Includes the
 * server's `ETag` as `etag` when one was sent.
 */
export async function fetchBootstrap(options: FetchBootstrapOptions): Promise<Bootstrap | null> {
  try {
    // No user to render for (no context, no string targetingKey) is a failure too: null, nothing
    // asked. Before, the bootstrap came back without one and createClient said BOOTSTRAP_INVALID.
    if (!isContext(options.context)) return null
    const timeoutMs = options.timeoutMs as number
    const result = await fetchFlags({
      fetch: capped(sameHostRedirects(options.fetch ?? ((input, init) => globalThis.fetch(input, init)))),
      url: options.url,
      context: options.context,
      headers: options.headers,
      // NaN, 0 or negative (an unset environment variable) is the default, not the client's 5 s:
      // a page render in an outage must not wait five times as long; Infinity too. A number over a
      // minute is a minute, as the client's requestTimeoutMs: 1e10 held a render on a silent server
      // for 24.8 days, and 90,000 must not be cut to the default second.
      timeoutMs: timeoutMs > 0 && timeoutMs < Infinity ? Math.min(timeoutMs, MAX_TIMEOUT_MS) : 1000,
      now: Date.now,
    })
    if (result.kind !== 'ok') return null
    // A relay answering from its last known good says when it fetched it (metadata.holdfast, CONTRACT
    // §9): the values are that old, so a browser cache saved since then wins over them (§5).
    const now = Date.now()
    const relayAt = result.upstream?.fetchedAt
    const fetchedAt = relayAt !== undefined && relayAt < now ? relayAt : now
    const bootstrap: Bootstrap = { context: options.context, flags: result.entries, fetchedAt }
    if (result.etag !== undefined) bootstrap.etag = result.etag
    // The relay said its values are stale: the page shows them so, as the browser would.
    if (result.upstream?.stale === true) bootstrap.stale = true
    return bootstrap
  } catch {
    return null
  }
}

/** The largest body `fetchBootstrap` reads: 16 MiB. The snapshot is rendered into the page. */
const MAX_BODY_BYTES = 16 * 1024 * 1024

// A bigger 200 body (a runaway export, a hostile server, a gzip bomb, counted after decoding)
// fails as it streams in, within the timeout and without holding it all in memory: null.
function capped(fetchImpl: typeof fetch): typeof fetch {
  return async (input, init) => {
    const response = await fetchImpl(input, init)
    if (response.status !== 200 || !response.body || typeof TransformStream === 'undefined') return response
    let size = 0
    const body = response.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          size += chunk.byteLength
          if (size > MAX_BODY_BYTES) controller.error(new Error(`the body is larger than ${MAX_BODY_BYTES} bytes`))
          else controller.enqueue(chunk)
        },
      }),
    )
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers })
  }
}

/** How many 307/308 redirects on the same host `fetchBootstrap` follows. */
const MAX_REDIRECTS = 5

// Redirects are followed by hand. A 307/308 on the same host (a moved path, http → https) keeps
// the POST, its body and the headers. A redirect to another host is not followed: a login proxy or
// a misrouted ingress is not the flag service, its answer must not render as this user's flags,
// and the API key in `headers` must not reach it (fetch would forward every header but
// Authorization). The 3xx itself is then a non-2xx answer: null.
function sameHostRedirects(fetchImpl: typeof fetch): typeof fetch {
  return async (input, init) => {
    // A path (a same-origin proxy) is read against the page, where there is one.
    let url = new URL(String(input), typeof location === 'undefined' ? undefined : location.href)
    for (let hops = 0; ; hops++) {
      const response = await fetchImpl(url.href, { ...init, redirect: 'manual' })
      const location = response.headers.get('Location')
      if ((response.status !== 307 && response.status !== 308) || !location || hops >= MAX_REDIRECTS) return response
      const next = new URL(location, url)
      const downgraded = url.protocol === 'https:' && next.protocol !== 'https:'
      if (next.hostname !== url.hostname || downgraded || !/^https?:$/.test(next.protocol)) return response
      await response.body?.cancel().catch(() => {})
      url = next
    }
  }
}
