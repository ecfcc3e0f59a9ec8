import type { JsonValue, WidenLiteral } from '@holdfast/core'
import { selectValue, useFlag } from './useFlag'

/**
 * A flag of any JSON type: the held value when its JSON type matches `defaultValue`'s (a `null`
 * default accepts any type), else `defaultValue` (required: it fixes the type). Re-renders only
 * when this flag's value changes; the exposure is logged after commit. Must be called inside
 * `<FlagProvider>`. A literal default gives the flag's JSON type, not the literal:
 * `useValue('theme', 'light')` is a `string` (typed `'light'`, `theme === 'dark'` would not
 * compile); name a union with `useValue<Theme>('theme', 'light')`. A default already typed as a
 * union (`props.theme: Theme`) keeps it.
 */
export function useValue<T extends JsonValue>(key: string, defaultValue: T & string): WidenLiteral<T, string>
export function useValue<T extends JsonValue>(key: string, defaultValue: T & number): WidenLiteral<T, number>
export function useValue<T extends JsonValue>(key: string, defaultValue: T & boolean): WidenLiteral<T, boolean>
export function useValue<T extends JsonValue>(key: string, defaultValue: T): T
export function useValue<T extends JsonValue>(key: string, defaultValue: T): T {
  return useFlag('useValue', key, defaultValue, selectValue)
}
