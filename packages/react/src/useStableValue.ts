import { useMemo } from 'react'
import { stableStringify } from '@holdfast/core'

/** A default that cannot be serialised was reported (once per page). */
let warned = false

/**
 * The first of a run of equal values. A default written inline (`useConfig('x', {})`) is a new
 * object on every render; the client memoises details by `Object.is` on the default, so handing
 * it a fresh object each time would make every getSnapshot call a "change" and loop. Primitives
 * compare by value, objects by their stable JSON (the `typeof` keeps a string apart from an
 * object with that JSON). An object with no JSON (a BigInt, a cycle) must not throw into render:
 * it is its own identity, handed back as given, with a warning once.
 */
export function useStableValue<T>(value: T): T {
  let identity: unknown = value
  if (value && typeof value == 'object')
    try {
      identity = stableStringify(value)
    } catch {
      // A console that throws (replaced by something odd) must not throw into render either.
      if (!warned)
        try {
          warned = true
          console.warn('[holdfast] a hook default is not JSON')
        } catch {}
    }
  // eslint-disable-next-line react-hooks/exhaustive-deps -- `identity` is the value's identity
  return useMemo(() => value, [typeof value, identity])
}
