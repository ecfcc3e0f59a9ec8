import { createHash } from 'node:crypto'

/**
 * The namespace of a relay's keys in a shared store: a hash of what it relays (`source`, e.g.
 * `flags-url https://…` or `upstream https://…`) and the credentials it sends there (header name →
 * value). Relays with the same source and the same credentials share documents and one lease; any
 * difference gives disjoint keys, so two fleets on one Redis never mix flags, and one API key's
 * values never reach relays configured with another. The credentials never appear in Redis, only
 * in the hash. Header names are compared case-insensitively; the order does not matter.
 */
export function storeNamespace(source: string, credentials: Record<string, string> = {}): string {
  const headers = Object.entries(credentials)
    .map(([name, value]) => [name.toLowerCase(), value] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return createHash('sha256').update(JSON.stringify([source, headers])).digest('hex').slice(0, 24)
}
