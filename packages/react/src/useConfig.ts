import { selectValue, useFlag } from './useFlag'

/**
 * An object flag (a configuration): the held value when it is a plain object, else
 * `defaultValue` (default `{}`). An inline default (`useConfig('x', { limit: 10 })`) is fine:
 * equal defaults count as one. Re-renders only when this flag's value changes; the exposure is
 * logged after commit. Treat the result as read-only: it is shared with every reader of the flag.
 * Must be called inside `<FlagProvider>`.
 */
export function useConfig<T extends object = Record<string, unknown>>(key: string, defaultValue: T = {} as T): T {
  return useFlag('useConfig', key, defaultValue, selectValue)
}
