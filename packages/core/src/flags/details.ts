// Turning held flags into `Details` for readers, with memory that is bounded and per reader.
//
// `getDetails` hands out the same details object while nothing changed, so memoised consumers see
// "unchanged" without comparing fields. For a held flag the memo hangs off the flag object itself
// (a WeakMap: it goes when the flag goes). Missing keys have no object to hang it on, so their
// memo is a small map that forgets its oldest entries. Two maps, by `stale` (the default's details
// differ in it): a late hydration reads the creation-time view (not failing then) and the current
// one (failing) in turns, and one memo per key would hand each a new object every read (React:
// "getServerSnapshot should be cached"). An app evaluating 100,000 distinct missing keys keeps at
// most MISSING_MEMO_SIZE of them in each.
//
// A reader that keeps reading one flag (a React hook) gets an observer: its own last evaluation
// and selection, so two readers of one flag with different defaults never evict each other's memo.
import { evaluate, type Expected } from './evaluate'
import type { HeldFlag } from './merge'
import { unconfirmed, type StoreState } from './store'
import type { Details, FlagClient, FlagObservation, FlagObserver } from '../types'

/** How many missing keys keep a memoised evaluation, in each of the two memos (`stale` or not). */
export const MISSING_MEMO_SIZE = 2048

interface Memo {
  defaultValue: unknown
  expected: Expected
  details: Details<unknown>
}

/** Memoised evaluation over the held flags. */
export interface DetailsReader {
  /**
   * The details of `key` for `defaultValue`; the same object while the flag and the default are
   * unchanged (for a flag not held, and its `stale` too). `asCreated`: over the store state at
   * creation, its flags and its status (`EvaluateOptions.asCreated`).
   */
  read<T>(key: string, defaultValue: T, expected: Expected, asCreated?: boolean): Details<T>
}

/**
 * Creates the memoised evaluation over the store state `state(asCreated)`: its flags, and what makes
 * a missing flag's default `stale` (`unconfirmed`: a failing status, or a partial answer that lacked it).
 */
export function createDetailsReader(state: (asCreated?: boolean) => StoreState): DetailsReader {
  const held = new WeakMap<HeldFlag, Memo>()
  // Indexed by `+stale`: a missing flag's default while answers confirm it, and while attempts fail.
  const missing = [new Map<string, Memo>(), new Map<string, Memo>()]
  return {
    read<T>(key: string, defaultValue: T, expected: Expected, asCreated?: boolean): Details<T> {
      // A flag unchanged since creation is one object in both views' flags: one memo, the same details.
      const s = state(asCreated)
      const f = s.flags.get(key)
      const stale = !f && unconfirmed(s, key)
      const memos = missing[+stale]
      const memo = f ? held.get(f) : memos.get(key)
      if (memo && Object.is(memo.defaultValue, defaultValue) && memo.expected === expected) return memo.details as Details<T>
      // Frozen: every reader with this default is handed this one object, so one changing it in
      // place would change what the others are given (the value and metadata are frozen already).
      const details = Object.freeze(evaluate(f, key, defaultValue, expected, stale))
      const next: Memo = { defaultValue, expected, details }
      if (f) held.set(f, next)
      else {
        memos.delete(key)
        memos.set(key, next)
        if (memos.size > MISSING_MEMO_SIZE) memos.delete(memos.keys().next().value as string)
      }
      return details
    },
  }
}

/**
 * One reader's observer of one flag on `client` (what a React hook holds), with its own memo: its
 * `get()` returns the same observation until something the reader shows changes — the selection
 * (`select`, default the details, compared by `equal`, default `Object.is`) — or its exposure
 * identity does (value, variant, user, whether the values are settled). Valid as a
 * `useSyncExternalStore` snapshot; `subscribe` hears this flag, and re-reads at any other change
 * of the client but its event counts (telling the reader only when its observation moved). Built on the public
 * `FlagClient` methods, so it works with any client that has them all (`isExposable` too: one
 * of your own written before it existed throws a TypeError here), and evaluates without logging
 * exposures (the reader calls `client.logExposure` after showing the value, which drops stand-ins).
 */
export function observeFlag<T, R = Details<T>>(
  client: FlagClient,
  key: string,
  defaultValue: T,
  select: (details: Details<T>) => R = (d) => d as unknown as R,
  equal: (a: R, b: R) => boolean = Object.is,
): FlagObserver<T, R> {
  const options = { exposure: false }
  const created = { exposure: false, asCreated: true }
  let last: FlagObservation<T, R> | undefined
  let server: FlagObservation<T, R> | undefined
  const observer: FlagObserver<T, R> = {
    get() {
      const details = client.getDetails(key, defaultValue, options)
      const who = client.getContext()
      // Whether what this reader shows counts as seen: the client's own rule (`isExposable`, what
      // `logExposure` logs), so a hook exposes exactly what `getGate` would (CONTRACT §6).
      const exposable = client.isExposable(details)
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
    getServer() {
      const now = observer.get()
      const details = client.getDetails(key, defaultValue, created)
      // Unchanged since creation (every render but a late hydration's): the live one. Else what the
      // server showed, on screen only until the re-render React makes at once: no exposure.
      return details === now.details ? now : server?.details === details ? server : (server = { ...now, result: select(details), details, exposable: false })
    },
    subscribe(listener) {
      const off = client.subscribeFlag(key, listener)
      // Whether what the reader shows counts as seen (the client's rule) or whose it is moves without
      // this flag changing: the cache read ending, an attempt ending, a pause, a switch. A status change
      // re-reads, and tells the reader only when its observation moved (the same object otherwise):
      // before, only a reader holding a stand-in heard it, so one holding the previous user's
      // observation never heard a switch that kept the same map (a user shown the fallback).
      // But a notification that moved the event counts (each exposure queued, each delivery: the
      // client moves them alone) moves none of that: it re-reads nothing, or N hooks logging their
      // exposures at mount would cost N x N reads.
      let events = client.getEventStats()
      const offStatus = client.subscribe(() => events != (events = client.getEventStats()) || last == observer.get() || listener())
      return () => (off(), offStatus())
    },
  }
  return observer
}
