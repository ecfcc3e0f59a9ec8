// Reads the `eventStreams` of an OFREP bulk answer (OFREP 0.3.0) into the one stream the client
// would listen to. Up front (not in the on-demand chunk): it runs on every answer, and it is what
// decides whether the chunk is loaded at all. Entries of unknown types are ignored, as the spec asks.

/** The event stream a server advertised: where to connect, and how long a hidden page keeps it. */
export interface StreamInfo {
  /** Absolute URL of the SSE stream. */
  url: string
  /** Close the stream after the page has been hidden this long (s). Default 120. */
  inactivityDelaySec: number
}

/**
 * The first `sse` entry of `eventStreams` with a usable `url` or `endpoint.requestUri` (joined to
 * `endpoint.origin`, else to the origin of `baseUrl`, the client's OFREP URL); undefined when none.
 */
export function readStreamInfo(raw: unknown, baseUrl: string): StreamInfo | undefined {
  if (!Array.isArray(raw)) return undefined
  for (const entry of raw.slice(0, 16) as Array<Record<string, unknown> | null>) {
    if (!entry || typeof entry !== 'object' || entry.type !== 'sse') continue
    const endpoint = entry.endpoint as Record<string, unknown> | undefined
    let url: URL | undefined
    // `""` is how a server without `omitempty` (Go, Java) writes an absent field: a `url: ""` beside
    // an endpoint resolved to the OFREP URL itself (a stream that never says anything), an
    // `origin: ""` failed the endpoint. Either is taken as absent.
    try {
      if (entry.url && typeof entry.url === 'string') url = new URL(entry.url, pageBase(baseUrl))
      else if (endpoint && typeof endpoint.requestUri === 'string' && endpoint.requestUri.startsWith('/'))
        url = new URL(endpoint.requestUri, typeof endpoint.origin === 'string' && endpoint.origin ? endpoint.origin : pageBase(baseUrl))
    } catch {
      url = undefined
    }
    // Credentials in the URL (`user:token@`): fetch refuses to dial it at all, so it was a stream
    // that failed on every attempt, while a usable entry after it went unused.
    if (!url || !/^https?:$/i.test(url.protocol) || url.username || url.password) continue
    const delay = entry.inactivityDelaySec
    return { url: url.href, inactivityDelaySec: typeof delay === 'number' && delay >= 1 && delay < 1e7 ? delay : 120 }
  }
  return undefined
}

/**
 * Whether the stream `url` is on the origin of `baseUrl`, the client's OFREP URL. Only then does it
 * get the configured headers (an API key, `Authorization`): an answer that names a stream elsewhere
 * (a vendor's SSE host, whose URL carries its own token, or a hostile or poisoned answer) must not
 * collect them.
 */
export function sameOrigin(url: string, baseUrl: string): boolean {
  try {
    return new URL(url).origin === new URL(pageBase(baseUrl)).origin
  } catch {
    return false
  }
}

// A base URL that is a path (`/flags`, a same-origin proxy) is resolved against the page.
function pageBase(baseUrl: string): string {
  const here = typeof location !== 'undefined' ? location.href : undefined
  return new URL(baseUrl, here).href
}
