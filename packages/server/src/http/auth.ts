import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

/**
 * Whether a request carries the API key, as `Authorization: Bearer KEY` (OFREP's BearerAuth) or
 * `X-API-Key: KEY` (OFREP's ApiKeyAuth). Always true when no key is configured. An empty key
 * never matches (the server refuses to start with one; this is the second lock).
 */
export function hasApiKey(req: IncomingMessage, apiKey: string | undefined): boolean {
  if (apiKey === undefined) return true
  if (apiKey === '') return false
  const header = req.headers['x-api-key']
  const candidates = [bearerToken(req.headers.authorization), (Array.isArray(header) ? header[0] : header)?.trim()]
  return candidates.some((candidate) => candidate !== undefined && candidate !== '' && sameSecret(candidate, apiKey))
}

/**
 * The token of an `Authorization: Bearer TOKEN` header, or undefined. Parsed by hand in linear
 * time: the regex it replaces (`^\s*Bearer\s+(.+?)\s*$`) backtracked quadratically, and
 * `Bearer a` + 16,000 spaces + `b` cost 0.4 s of CPU per request before any key was compared.
 */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined
  const value = authorization.trim()
  if (value.length < 7 || value.slice(0, 6).toLowerCase() !== 'bearer') return undefined
  const rest = value.slice(6)
  const token = rest.trimStart()
  // "Bearer" must be followed by whitespace, then the token.
  if (token.length === rest.length || token === '') return undefined
  return token
}

// Hashing first gives equal-length buffers, which timingSafeEqual needs, without leaking the
// key's length through an early return.
function sameSecret(a: string, b: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest()
  return timingSafeEqual(digest(a), digest(b))
}
