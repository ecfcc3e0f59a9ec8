// Exposure de-duplication: one exposure per (context, flag, value, variant) per page session.
import { hashString, stableStringify } from '../platform/hash'
import type { Details } from '../types'

/** Remembers which exposures this page already logged. */
export interface ExposureLog {
  /** True the first time this (context, flag, value, variant) is seen; false ever after. */
  first(contextHash: string, details: Details<unknown>): boolean
}

/**
 * What this page logged, for every client: a provider remounted for each user (`key={user}`), after
 * an error boundary's reset or when shown again, or a provider set again, is a new client in the
 * same page session, and must not log the same exposure again. Bounded: a page open for days with a
 * config that changes every poll (or many users) would otherwise keep every value's JSON for ever.
 * Each entry is a 28-character hash, and past 10,000 the oldest goes: at worst it is logged again.
 */
const seen = new Set<string>()

/** Creates the exposure log of a client whose events go to the database `name` (its event queue); the page session is its lifetime. */
export function createExposureLog(name: string): ExposureLog {
  // Evaluation hands out the same details object while nothing changed, so most repeated
  // evaluations are answered here without building the string key.
  const recent = new WeakMap<object, string>()
  return {
    first(contextHash, details) {
      if (recent.get(details) === contextHash) return false
      recent.set(details, contextHash)
      const key = hashString(`${name}\u0000${contextHash}\u0000${details.key}\u0000${stableStringify(details.value)}\u0000${details.variant ?? ''}`)
      if (seen.has(key)) return false
      if (seen.add(key).size > 10_000) seen.delete(seen.values().next().value!)
      return true
    },
  }
}
