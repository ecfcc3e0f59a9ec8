// Which request headers the relay can pass upstream: `--forward-header`, the snapshot command's
// `--header`, and the names a values snapshot's `holdfastCredentials` may record. In a module of
// its own, imported by the schemas as well as the upstream source.

/** Headers that make a request conditional or partial (RFC 9110 §13, §14): never forwarded, see {@link UNFORWARDABLE_HEADERS}. */
export const CONDITIONAL_HEADERS: readonly string[] = ['if-match', 'if-modified-since', 'if-range', 'if-unmodified-since', 'range']

/**
 * Headers `--forward-header` cannot name: the relay writes them itself for its own request
 * (`Content-Type`, `Content-Length`, `Accept`, `If-None-Match`, `Host`), they describe the
 * caller's connection, not who it is, or they make the request conditional (`If-Match`, `Range`,
 * …). Forwarded, the caller's copy went up beside the relay's ("application/json, application/json": 415) or contradicted the relay's body (undici refuses a
 * length the body does not have), so every proxied request failed while the relay ran "fine".
 */
export const UNFORWARDABLE_HEADERS: ReadonlySet<string> = new Set([
  'accept',
  'connection',
  'content-encoding',
  'content-length',
  'content-type',
  'expect',
  'host',
  'if-none-match',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  // The client's question about its own copy, not the relay's: forwarded, any one client made the
  // upstream answer the relay's request 412 (If-Match, If-Unmodified-Since), 304 (If-Modified-Since:
  // the relay asked about no copy) or 206 (Range, If-Range), none of them an answer to serve: 503
  // for that client, the status `failing` for everyone, a 304 or 206 counted towards the breaker.
  ...CONDITIONAL_HEADERS,
])

/**
 * Why `--forward-header NAME` (or `--header NAME` of the snapshot command) is refused, or undefined
 * when it may be forwarded: one sentence, for the start-up error.
 */
export function unforwardableReason(name: string): string | undefined {
  const lower = name.toLowerCase()
  if (CONDITIONAL_HEADERS.includes(lower)) return 'a conditional or range header would let one client make the upstream answer 304, 206 or 412, which the relay cannot serve (read as an upstream failure for every user)'
  return UNFORWARDABLE_HEADERS.has(lower) ? 'the relay sets this header itself for its own request, or it describes the connection' : undefined
}
