import type { IncomingMessage } from 'node:http'

/** Request headers a browser client needs: JSON, both API-key forms and ETag revalidation. */
const BASE_ALLOWED_HEADERS = ['Content-Type', 'Authorization', 'X-API-Key', 'If-None-Match']

/** How long a browser may cache a preflight answer: 10 minutes (Chromium caps it at 2 hours). */
export const PREFLIGHT_MAX_AGE_SECONDS = 600

/**
 * Why `value` cannot be `corsOrigin` (`--cors-origin`), or undefined when it can: `*`, `null`, or
 * an origin exactly as a browser sends it in `Origin` (scheme://host[:port], lower case, nothing
 * after). A browser compares `Access-Control-Allow-Origin` with its origin byte for byte, so
 * "https://app.example/" (a trailing slash) would fail every cross-origin request, silently.
 */
export function corsOriginProblem(value: string, name: string): string | undefined {
  if (value === '*' || value === 'null') return undefined
  let origin: string | undefined
  try {
    origin = new URL(value).origin
  } catch {
    // not a URL at all
  }
  if (origin === value) return undefined
  // A list (as some servers take one) parses as one URL whose host runs up to the comma: the
  // suggestion would be half of it, `"https://a.example,https"`.
  if (/[\s,]/.test(value.trim())) {
    return `${name} takes one origin, not a list, got "${value}": name the one origin the app is served from, or leave ${name} out to allow any origin (*)`
  }
  const meant = origin && origin !== 'null' ? `; did you mean "${origin}"?` : ''
  return `${name} must be an origin like https://app.example.com (scheme, host and port: no path, no trailing slash, in lower case), got "${value}"${meant}`
}

/**
 * CORS headers for every response. `origin` undefined means any origin (`*`); a named origin is
 * sent as is, with `Vary: Origin` so shared caches do not hand it to other origins. `ETag` and
 * `Retry-After` are exposed because a browser hides every non-safelisted header from script.
 */
export function corsHeaders(origin: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {
    'Access-Control-Allow-Origin': origin ?? '*',
    'Access-Control-Expose-Headers': 'ETag, Retry-After',
  }
  if (origin) headers['Vary'] = 'Origin'
  return headers
}

/**
 * Headers for a preflight (OPTIONS) answer. Whatever headers the browser asks for are allowed on
 * top of the base list, so a client that adds its own (a tracing header, say) is not blocked.
 */
export function preflightHeaders(req: IncomingMessage, origin: string | undefined): Record<string, string> {
  const requested = String(req.headers['access-control-request-headers'] ?? '')
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean)
  const allowed = [...BASE_ALLOWED_HEADERS]
  // A Set of the names seen, not a scan of `allowed` per name: preflights need no key, and the
  // scan was quadratic (4,000 names in one 16 KiB header cost ~0.7 s of CPU per request).
  const seen = new Set(BASE_ALLOWED_HEADERS.map((name) => name.toLowerCase()))
  for (const header of requested) {
    const name = header.toLowerCase()
    if (!seen.has(name)) {
      seen.add(name)
      allowed.push(header)
    }
  }
  const headers = corsHeaders(origin)
  headers['Access-Control-Allow-Methods'] = 'GET, POST, OPTIONS'
  headers['Access-Control-Allow-Headers'] = allowed.join(', ')
  headers['Access-Control-Max-Age'] = String(PREFLIGHT_MAX_AGE_SECONDS)
  headers['Vary'] = origin ? 'Origin, Access-Control-Request-Headers' : 'Access-Control-Request-Headers'
  return headers
}
