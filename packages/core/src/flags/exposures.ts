// Exposure de-duplication: one exposure per (context, flag, value, variant) per page session.
import { stableStringify } from '../platform/hash'
import type { Details } from '../types'

/** Remembers which exposures this page already logged. */
export interface ExposureLog {
  /** True the first time this (context, flag, value, variant) is seen; false ever after. */
  first(contextHash: string, details: Details<unknown>): boolean
}

/** Creates an empty exposure log (one per client; the page session is its lifetime). */
export function createExposureLog(): ExposureLog {
  const seen = new Set<string>()
  // Evaluation hands out the same details object while nothing changed, so most repeated
  // evaluations are answered here without building the string key.
  const recent = new WeakMap<object, string>()
  return {
    first(contextHash, details) {
      if (recent.get(details) === contextHash) return false
      recent.set(details, contextHash)
      const key = `${contextHash}\u0000${details.key}\u0000${stableStringify(details.value)}\u0000${details.variant ?? ''}`
      if (seen.has(key)) return false
      seen.add(key)
      return true
    },
  }
}
