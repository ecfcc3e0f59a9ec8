import { selectValue, useFlag } from './useFlag'

/**
 * A boolean flag (a gate, a kill switch): the held value when it is a boolean, else
 * `defaultValue` (default `false`), which is also what renders while nothing is known yet.
 * Re-renders only when this flag's value changes; the exposure is logged after commit, once per
 * user and value. Must be called inside `<FlagProvider>`.
 */
export function useGate(key: string, defaultValue = false): boolean {
  return useFlag('useGate', key, defaultValue, selectValue)
}
