// OpenFeature's evaluation context as Holdfast's. OpenFeature allows a missing `targetingKey` and
// `Date` attributes; Holdfast needs a string key and hashes contexts as JSON, where two different
// Dates would both read `{}`. Dates become ISO strings, everywhere in the context, before the hash.
// A context is app data: an attribute that throws when read, or that refers back to itself, is
// dropped (null) rather than thrown into the app or walked forever. A BigInt is passed on: the
// client cannot send it and says so (INVALID_CONTEXT, PROVIDER_ERROR), where a null would quietly
// evaluate the user as someone without the attribute.
import type { EvaluationContext as OpenFeatureContext } from '@openfeature/web-sdk'
import type { EvaluationContext } from '@holdfast/core'

/** The Holdfast context for an OpenFeature one, or undefined when it has no non-empty string `targetingKey`. */
export function toHoldfastContext(context: OpenFeatureContext | undefined): EvaluationContext | undefined {
  if (!context || typeof context !== 'object' || typeof context.targetingKey !== 'string' || context.targetingKey === '') return undefined
  return plain(context, 0, new WeakSet()) as EvaluationContext
}

// `ancestors` holds the objects on the path from the root: a cycle ends in null; depth is bounded too.
function plain(value: unknown, depth: number, ancestors: WeakSet<object>): unknown {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString()
  if (typeof value === 'function' || typeof value === 'symbol') return null
  if (value === null || typeof value !== 'object') return value
  if (depth > 32 || ancestors.has(value)) return null
  ancestors.add(value)
  let out: unknown
  if (Array.isArray(value)) out = value.map((item) => plain(item, depth + 1, ancestors))
  else {
    const copy: Record<string, unknown> = {}
    for (const key of Object.keys(value)) {
      let item: unknown
      try {
        item = plain((value as Record<string, unknown>)[key], depth + 1, ancestors)
      } catch {
        item = null
      }
      Object.defineProperty(copy, key, { value: item, enumerable: true, writable: true, configurable: true })
    }
    out = copy
  }
  ancestors.delete(value)
  return out
}
