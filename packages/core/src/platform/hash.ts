// Synchronous, tiny, non-cryptographic hashing for cache keys and context identity. It needs to
// be synchronous (ETag matching happens while building a request) and to work where
// crypto.subtle does not (plain-HTTP origins). Two 53-bit halves make collisions between the ten
// cached contexts of one origin practically impossible; it is not meant to resist an attacker,
// only to keep raw targeting keys and attributes out of storage.

function cyrb53(text: string, seed: number): number {
  let h1 = 0xdeadbeef ^ seed
  let h2 = 0x41c6ce57 ^ seed
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i)
    h1 = Math.imul(h1 ^ ch, 2654435761)
    h2 = Math.imul(h2 ^ ch, 1597334677)
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909)
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909)
  return 4294967296 * (2097151 & h2) + (h1 >>> 0)
}

/** A 106-bit hex digest of `text`. */
export function hashString(text: string): string {
  return cyrb53(text, 1).toString(16).padStart(14, '0') + cyrb53(text, 2).toString(16).padStart(14, '0')
}

/**
 * JSON with object keys sorted (undefined and function members left out), so two values with the
 * same content give the same string whatever their key order: the value identity Holdfast uses
 * for contexts. `@holdfast/react` compares `context` props and inline defaults with it. A Date
 * reads as JSON.stringify sends it (its ISO string), so another date is another context.
 */
export function stableStringify(value: unknown): string {
  if (value instanceof Date) value = value.toJSON()
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null'
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`
  const obj = value as Record<string, unknown>
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined && typeof obj[k] !== 'function')
    .sort()
  return `{${keys.map((k) => `${JSON.stringify(k)}:${stableStringify(obj[k])}`).join(',')}}`
}

/** Deep equality of JSON data (values, metadata). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (!a || !b || typeof a != 'object' || typeof b != 'object' || Array.isArray(a) !== Array.isArray(b)) return false
  const keys = Object.keys(a)
  return (
    keys.length === Object.keys(b).length &&
    keys.every((k) => Object.prototype.hasOwnProperty.call(b, k) && jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
  )
}

/**
 * Hash of a full context (equal contexts, whatever their key order, hash equally), or undefined
 * when the context cannot be serialised (a BigInt, a cycle, a throwing getter).
 */
export function safeContextHash(context: unknown): string | undefined {
  try {
    return hashString(stableStringify(context))
  } catch {
    return undefined
  }
}
