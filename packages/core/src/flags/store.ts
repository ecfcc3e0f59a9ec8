// The one small store under everything: immutable snapshots, `getState / setState / subscribe`,
// listeners per flag key as well as global, no-op updates skipped. Flag listeners are told only
// about their own flag, at most once per update; there is no "version" counter that would wake
// every consumer.
import { jsonEqual } from '../platform/hash'
import { unchangedOr, type FlagMap } from './merge'
import type { EventStats, Logger, Status } from '../types'

/** What the store holds: the flags, the status, and the event counts. Immutable snapshots. */
export interface StoreState {
  readonly flags: FlagMap
  readonly status: Status
  readonly events: EventStats
  /** After a partial answer (one with failure entries), the keys it said FLAG_NOT_FOUND for; undefined after a clean one. Set with `flags`. */
  readonly partial?: ReadonlySet<string>
}

/**
 * Whether the latest attempt failed (or the server said its values are stale): the status `stale`
 * or `error`. A caller's default for a flag not held is `stale` then (CONTRACT §3: nothing
 * confirmed it missing), so its listeners hear when this flips.
 */
export const failing = (status: Status): boolean => status.state == 'stale' || status.state == 'error'

/**
 * Whether the caller's default for `key`, a flag not held, is `stale`: the latest attempt failed, or
 * it was a partial answer that did not say FLAG_NOT_FOUND for `key` (CONTRACT §3: "did not confirm
 * this flag"; §4 keeps what such an answer lacks, stale). Its listeners hear when this flips.
 */
export const unconfirmed = (state: StoreState, key: string): boolean => failing(state.status) || state.partial?.has(key) === false

// Two answers' FLAG_NOT_FOUND keys alike (one Set per answer), in any order: no change.
const keysOf = (keys?: ReadonlySet<string>) => keys && [...keys].sort()

/** The one small store: immutable snapshots, global and per-flag listeners, no-op updates skipped. */
export interface Store {
  getState(): StoreState
  /** Applies a partial update; listeners run once, after the whole update is in place. */
  setState(update: Partial<StoreState>): void
  subscribe(listener: () => void): () => void
  subscribeFlag(key: string, listener: () => void): () => void
}

/** Creates the store with `initial`; a throwing listener is logged through `logger` and never stops the others. */
export function createStore(initial: StoreState, logger: Logger): Store {
  let state = initial
  Object.freeze(initial.status)
  const listeners = new Set<() => void>()
  const flagListeners = new Map<string, Set<() => void>>()

  const call = (listener: () => void) => {
    // A throwing listener belongs to the app; it must not stop the others or the client.
    try {
      listener()
    } catch (error) {
      logger.error('a subscriber threw', error)
    }
  }

  // Over a copy, so one added meanwhile waits for the next change; one removed meanwhile (a
  // component a sibling's update unmounted) is not called after its unsubscribe.
  const notify = (set: Set<() => void> = new Set()) => {
    for (const listener of [...set]) if (set.has(listener)) call(listener)
  }

  function setState(update: Partial<StoreState>) {
    const prev = state
    // A new map holding the very same flag objects is no change: the previous one is kept.
    const flags = unchangedOr(prev.flags, update.flags ?? prev.flags)
    // Frozen: getStatus() hands this one object to every reader (useFlagStatus, the OpenFeature
    // provider, the client's own readiness checks); one changing it would change it for all.
    const status = update.status && !jsonEqual(update.status, prev.status) ? Object.freeze(update.status) : prev.status
    const events = update.events && !jsonEqual(update.events, prev.events) ? update.events : prev.events
    const partial = update.flags && !jsonEqual(keysOf(update.partial), keysOf(prev.partial)) ? update.partial : prev.partial
    if (flags === prev.flags && status === prev.status && events === prev.events && partial === prev.partial) return

    const changedKeys: string[] = []
    const next = { flags, status, events, partial }
    // Only the keys someone listens to are compared (not every flag held).
    // A flag not held, read as the caller's default, changes with `unconfirmed` (stale).
    // (`unconfirmed` is the same in both when neither the status's failing nor the partial answer moved.)
    // An update of the event counts alone changes no flag: no key is compared.
    if (flags !== prev.flags || status !== prev.status || partial !== prev.partial)
      for (const key of flagListeners.keys()) if (prev.flags.get(key) !== flags.get(key) || (!flags.has(key) && unconfirmed(prev, key) != unconfirmed(next, key))) changedKeys.push(key)
    state = next
    for (const key of changedKeys) notify(flagListeners.get(key))
    notify(listeners)
  }

  return {
    getState: () => state,
    setState,
    subscribe(listener) {
      listeners.add(listener)
      return () => void listeners.delete(listener)
    },
    subscribeFlag(key, listener) {
      let set = flagListeners.get(key)
      if (!set) flagListeners.set(key, (set = new Set()))
      set.add(listener)
      return () => {
        set.delete(listener)
        if (set.size === 0 && flagListeners.get(key) === set) flagListeners.delete(key)
      }
    },
  }
}
