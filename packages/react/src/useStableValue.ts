import { useMemo } from 'react'
import { stableStringify } from '@holdfast/core'

/**
 * The first of a run of equal values. A default written inline (`useConfig('x', {})`) is a new
 * object on every render; the client memoises details by `Object.is` on the default, so handing
 * it a fresh object each time would make every getSnapshot call a "change" and loop. Primitives
 * compare by value, objects by their stable JSON.
 */
export function useStableValue<T>(value: T): T {
  const isObject = value !== null && typeof value === 'object'
  const identity = isObject ? stableStringify(value) : value
  // eslint-disable-next-line react-hooks/exhaustive-deps -- `identity` is the value's identity
  return useMemo(() => value, [isObject, identity])
}
