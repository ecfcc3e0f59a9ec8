import { createHash } from 'node:crypto'

/**
 * The namespace of a relay's keys in a shared store: a hash of what it relays (`source`, e.g.
 * `flags-url https://…` or `upstream https://…`) and the credentials it sends there (header name →
 * value). Relays with the same source and the same credentials share documents and one lease; any
 * difference gives disjoint keys, so two fleets on one Redis never mix flags, and one API key's
 * values never reach relays configured with another. The credentials never appear in Redis, only
 * in the hash. Header names are compared case-insensitively; the order does not matter.
 *
 * `name` (`--redis-namespace`) goes in front, `NAME:<hash>`: relays of two environments whose
 * source is written the same (one URL that each environment's DNS resolves to its own service) are
 * kept apart by it. Without one the namespace is the bare hash, as before the option, so relays of
 * an older release and a newer one started without it stay one fleet through a rolling upgrade.
 * (A name has no `:`, so no named key can spell an unnamed one.)
 */
export function storeNamespace(source: string, credentials: Record<string, string> = {}, name?: string): string {
  const headers = Object.entries(credentials)
    .map(([header, value]) => [header.toLowerCase(), value] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  const hash = createHash('sha256').update(JSON.stringify([source, headers])).digest('hex').slice(0, 24)
  return name === undefined ? hash : `${name}:${hash}`
}

/** What a `--redis-namespace` may be: 1 to 64 letters, digits, `.`, `_`, `-` (it is part of every key). */
export const NAMESPACE_NAME = /^[A-Za-z0-9._-]{1,64}$/

/** Why `name` cannot be a namespace name (`label` names the option), or undefined when it can. */
export function namespaceNameProblem(name: string, label: string): string | undefined {
  if (NAMESPACE_NAME.test(name)) return undefined
  // Any length may come (a value read from the wrong variable): the message names its start.
  const shown = name.length > 80 ? `${JSON.stringify(name.slice(0, 80))}… (${name.length} characters)` : JSON.stringify(name)
  return `${label} must be 1 to 64 letters, digits, ".", "_" or "-", got ${shown}`
}
