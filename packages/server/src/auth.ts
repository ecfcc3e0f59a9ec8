import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

/**
 * Whether a request carries the API key, as `Authorization: Bearer KEY` (OFREP's BearerAuth) or
 * `X-API-Key: KEY` (OFREP's ApiKeyAuth). Always true when no key is configured.
 */
export function hasApiKey(req: IncomingMessage, apiKey: string | undefined): boolean {
  if (apiKey === undefined) return true
  const authorization = req.headers.authorization
  const bearer = authorization?.match(/^\s*Bearer\s+(.+?)\s*$/i)?.[1]
  const header = req.headers['x-api-key']
  const xApiKey = Array.isArray(header) ? header[0] : header
  return [bearer, xApiKey?.trim()].some((candidate) => candidate !== undefined && sameSecret(candidate, apiKey))
}

// Hashing first gives equal-length buffers, which timingSafeEqual needs, without leaking the
// key's length through an early return.
function sameSecret(a: string, b: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest()
  return timingSafeEqual(digest(a), digest(b))
}
