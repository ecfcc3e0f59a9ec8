// Evaluation: a lookup in memory, a type check against the caller's default, never a throw,
// never I/O. The client wraps this with exposure logging.
import { freezeJson } from '../protocol/readers'
import type { HeldFlag } from './merge'
import type { Details } from '../types'

/** The JSON type a default asks for; `null` accepts any value. */
export type Expected = 'boolean' | 'string' | 'number' | 'object' | 'array' | 'any'

/** The JSON type a default asks for: `boolean`, `string`, `number`, `object`, `array`, or `any` for `null`/`undefined`. */
export function expectedType(defaultValue: unknown): Expected {
  if (defaultValue === null || defaultValue === undefined) return 'any'
  if (Array.isArray(defaultValue)) return 'array'
  const t = typeof defaultValue
  return t === 'boolean' || t === 'string' || t === 'number' || t === 'object' ? t : 'any'
}

/** Whether `value` is of the JSON type `expected` (`any` accepts everything; `object` excludes arrays and null). */
export function matchesType(value: unknown, expected: Expected): boolean {
  // The type a default of this value would ask for: null (and any non-JSON value) is `any`, so it
  // matches only an `any` default.
  return expected === 'any' || expectedType(value) === expected
}

/**
 * The details of one evaluation. A missing flag gives the default with `source: 'default'` and
 * `FLAG_NOT_FOUND`, `stale` when nothing confirmed it missing (`failing`: the latest attempt failed,
 * or was a partial answer without it, store.ts `unconfirmed`); a value of another JSON type gives the default with `TYPE_MISMATCH`; a flag the server
 * sent without a value gives the default with the server's reason.
 */
export function evaluate<T>(flag: HeldFlag | undefined, key: string, defaultValue: T, expected: Expected, failing: boolean): Details<T> {
  if (!flag) return { key, value: defaultValue, source: 'default', errorCode: 'FLAG_NOT_FOUND', stale: failing }
  const details: Details<T> = { key, value: defaultValue, source: flag.source, stale: flag.stale }
  if (flag.reason !== undefined) details.reason = flag.reason
  if (flag.variant !== undefined) details.variant = flag.variant
  // Frozen like the value: one reader changing it would change it for every later one.
  if (flag.metadata !== undefined) details.metadata = freezeJson(flag.metadata)
  if (flag.updatedAt !== undefined) details.updatedAt = flag.updatedAt
  // A relay's value kept through a per-flag error: reason STALE, the code in its metadata (an
  // `errorCode` on the entry would make it a failure entry to OFREP clients, the value lost).
  const errorCode = flag.errorCode ?? (flag.reason === 'STALE' && flag.metadata?.errorCode)
  if (typeof errorCode == 'string') details.errorCode = errorCode
  if (flag.value === undefined) {
    // A failure with no last known good value: nothing held came from anywhere but the caller.
    if (flag.errorCode !== undefined) details.source = 'default'
    return details
  }
  if (!matchesType(flag.value, expected)) {
    details.errorCode = 'TYPE_MISMATCH'
    return details
  }
  // Frozen on the way out (once per value): what getConfig hands out cannot change what later
  // reads, other components or the cache see.
  details.value = (typeof flag.value === 'object' ? freezeJson(flag.value) : flag.value) as T
  return details
}
