// OpenFeature's evaluation context as Holdfast's. OpenFeature allows a missing `targetingKey` and
// `Date` attributes; Holdfast needs a string key and hashes contexts as JSON, where two different
// Dates would both read `{}`. Dates become ISO strings, everywhere in the context, before the hash.
import type { EvaluationContext as OpenFeatureContext } from '@openfeature/web-sdk'
import type { EvaluationContext } from '@holdfast/core'

/** The Holdfast context for an OpenFeature one, or undefined when it has no non-empty string `targetingKey`. */
export function toHoldfastContext(context: OpenFeatureContext | undefined): EvaluationContext | undefined {
  if (!context || typeof context !== 'object' || typeof context.targetingKey !== 'string' || context.targetingKey === '') return undefined
  return plain(context, 0) as EvaluationContext
}

/** True when the context carries any attribute at all (an unset OpenFeature context is `{}`). */
export function isEmptyContext(context: OpenFeatureContext | undefined): boolean {
  return !context || typeof context !== 'object' || Object.keys(context).length === 0
}

// Depth-bounded: a context is user data, and a cycle or a pathological nesting must not hang the page.
function plain(value: unknown, depth: number): unknown {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString()
  if (value === null || typeof value !== 'object') return value
  if (depth > 32) return null
  if (Array.isArray(value)) return value.map((item) => plain(item, depth + 1))
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(value)) {
    Object.defineProperty(out, key, { value: plain((value as Record<string, unknown>)[key], depth + 1), enumerable: true, writable: true, configurable: true })
  }
  return out
}
