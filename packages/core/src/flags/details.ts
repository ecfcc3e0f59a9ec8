// Turning held flags into `Details` for readers, with memory that is bounded and per reader.
//
// `getDetails` hands out the same details object while nothing changed, so memoised consumers see
// "unchanged" without comparing fields. For a held flag the memo hangs off the flag object itself
// (a WeakMap: it goes when the flag goes). Missing keys have no object to hang it on, so their
// memo is a small map that forgets its oldest entries: an app evaluating 100,000 distinct missing
// keys keeps at most MISSING_MEMO_SIZE of them.
//
// A reader that keeps reading one flag (a React hook) gets an observer: its own last evaluation
// and selection, so two readers of one flag with different defaults never evict each other's memo.
import { evaluate, expectedType, type Expected } from './evaluate'
import type { HeldFlag } from './merge'
import type { Details } from '../types'

/** How many missing keys keep a memoised evaluation. */
export const MISSING_MEMO_SIZE = 2048

interface Memo {
  defaultValue: unknown
  expected: Expected
  details: Details<unknown>
}

/** Memoised evaluation over the held flags. */
export interface DetailsReader {
  /** The details of `key` for `defaultValue`; the same object while the flag and the default are unchanged. */
  read<T>(key: string, defaultValue: T, expected: Expected): Details<T>
  /** How many missing keys are memoised (for tests of the bound). */
  missingSize(): number
}

/** Creates the memoised evaluation over `flag(key)`. */
export function createDetailsReader(flag: (key: string) => HeldFlag | undefined): DetailsReader {
  const held = new WeakMap<HeldFlag, Memo>()
  const missing = new Map<string, Memo>()
  return {
    read<T>(key: string, defaultValue: T, expected: Expected): Details<T> {
      const f = flag(key)
      const memo = f ? held.get(f) : missing.get(key)
      if (memo && Object.is(memo.defaultValue, defaultValue) && memo.expected === expected) return memo.details as Details<T>
      const details = evaluate(f, key, defaultValue, expected)
      const next: Memo = { defaultValue, expected, details }
      if (f) held.set(f, next)
      else {
        missing.delete(key)
        missing.set(key, next)
        if (missing.size > MISSING_MEMO_SIZE) missing.delete(missing.keys().next().value as string)
      }
      return details
    },
    missingSize: () => missing.size,
  }
}

/** What an observer hands its reader: the selection, the details behind it, and whether it may count as an exposure. */
export interface FlagObservation<T, R> {
  readonly result: R
  readonly details: Details<T>
  /** False while the value only stands in (the previous user's during a switch, fallback while the cache is read). */
  readonly exposable: boolean
}

/**
 * One reader's view of one flag: `get()` returns the same observation until something the reader
 * shows changes (the selection by `equal`) or its exposure identity does (value, variant, user,
 * whether it may count as an exposure). Valid as a `useSyncExternalStore` snapshot.
 */
export interface FlagObserver<T, R> {
  get(): FlagObservation<T, R>
  subscribe(listener: () => void): () => void
}

/** Creates an observer; `select` and `equal` default to the details themselves and `Object.is`. */
export function createFlagObserver<T, R>(input: {
  key: string
  defaultValue: T
  details: (key: string, defaultValue: T, expected: Expected) => Details<T>
  exposable: (details: Details<T>) => boolean
  identity: () => unknown
  subscribe: (key: string, listener: () => void) => () => void
  select?: (details: Details<T>) => R
  equal?: (a: R, b: R) => boolean
}): FlagObserver<T, R> {
  const { key, defaultValue } = input
  const expected = expectedType(defaultValue)
  const select = input.select ?? ((d: Details<T>) => d as unknown as R)
  const equal = input.equal ?? Object.is
  let last: (FlagObservation<T, R> & { who: unknown }) | undefined
  return {
    get() {
      const details = input.details(key, defaultValue, expected)
      const who = input.identity()
      const exposable = input.exposable(details)
      if (last && last.details === details && last.who === who && last.exposable === exposable) return last
      const result = select(details)
      if (
        last &&
        equal(last.result, result) &&
        Object.is(last.details.value, details.value) &&
        last.details.variant === details.variant &&
        last.who === who &&
        last.exposable === exposable
      )
        return last
      return (last = { result, details, exposable, who })
    },
    subscribe: (listener) => input.subscribe(key, listener),
  }
}
