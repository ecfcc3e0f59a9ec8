import type { JsonValue } from '@holdfast/core'
import { selectValue, useFlag } from './useFlag'

/**
 * A flag of any JSON type: the held value when its JSON type matches `defaultValue`'s (a `null`
 * default accepts any type), else `defaultValue` (required: it fixes the type). Re-renders only
 * when this flag's value changes; the exposure is logged after commit. Must be called inside
 * `<FlagProvider>`. A literal default gives the flag's JSON type, not the literal:
 * `useValue('theme', 'light')` is a `string` (typed `'light'`, `theme === 'dark'` would not
 * compile); name a union with `useValue<Theme>('theme', 'light')`.
 */
export function useValue(key: string, defaultValue: string): string
export function useValue(key: string, defaultValue: number): number
export function useValue(key: string, defaultValue: boolean): boolean
export function useValue<T extends JsonValue>(key: string, defaultValue: T): T
export function useValue<T extends JsonValue>(key: string, defaultValue: T): T {
  return useFlag('useValue', key, defaultValue, selectValue)
}
