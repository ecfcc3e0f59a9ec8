// The one internal hook under useGate, useConfig, useValue and useFlagDetails: a per-flag
// `useSyncExternalStore` subscription, a selector, and the exposure logged after commit.
import { useEffect, useMemo, useSyncExternalStore } from 'react'
import type { Details, EvaluationContext } from '@holdfast/core'
import { useClientFor } from './FlagContext'
import { useStableValue } from './useStableValue'

interface Snapshot<T, R> {
  /** What the hook returns. */
  readonly result: R
  /** The evaluation `result` came from: what the exposure reports. */
  readonly details: Details<T>
  /** Exposure identity beyond the value: the user it was evaluated for... */
  readonly context: EvaluationContext
  /** ...and whether the held values are that user's (false while a new user's are still loading). */
  readonly settled: boolean
}

/**
 * Reads one flag and re-renders only when what `select` takes from it changes (by `equal`,
 * default `Object.is`), or when its exposure identity changes (value, variant, user). A failed
 * refresh marks every flag `stale`; a hook that selects the value does not re-render for that.
 * `select` and `equal` must be module-level functions (they are not dependencies).
 */
export function useFlag<T, R>(
  hook: string,
  key: string,
  defaultValue: T,
  select: (details: Details<T>) => R,
  equal: (a: R, b: R) => boolean = Object.is,
): R {
  const client = useClientFor(hook)
  const stableDefault = useStableValue(defaultValue)

  const [subscribe, getSnapshot] = useMemo(() => {
    let lastDetails: Details<T> | undefined
    let last: Snapshot<T, R> | undefined
    const subscribe = (onChange: () => void) => client.subscribeFlag(key, onChange)
    // Stable while nothing this hook shows changed. The client memoises details per flag, but
    // two hooks reading one flag with different defaults take turns evicting each other's memo,
    // so equality is decided here too: otherwise such a pair would re-render each other forever.
    const getSnapshot = (): Snapshot<T, R> => {
      const details = client.getDetails(key, stableDefault, { exposure: false })
      if (last && details === lastDetails) return last
      lastDetails = details
      const result = select(details)
      const context = client.getContext()
      const settled = client.getStatus().state !== 'loading'
      if (
        last &&
        equal(last.result, result) &&
        Object.is(last.details.value, details.value) &&
        last.details.variant === details.variant &&
        last.context === context &&
        last.settled === settled
      )
        return last
      return (last = { result, details, context, settled })
    }
    return [subscribe, getSnapshot] as const
    // `select` and `equal` are module-level constants of each public hook.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, key, stableDefault])

  // The client applies `bootstrap` synchronously at creation, so the server render, the
  // hydrating render and the first client render all read the same values.
  const snapshot = useSyncExternalStore(subscribe, getSnapshot, getSnapshot)

  // After commit, never during render: a render may be thrown away (StrictMode, Suspense,
  // concurrent interruptions) and must not count as the user having seen the value. The client
  // de-duplicates per (user, flag, value, variant), so StrictMode's second run logs nothing. While
  // a new user's values load, the previous user's stand in on screen: not an exposure of either.
  useEffect(() => {
    if (snapshot.settled) client.logExposure(snapshot.details)
  }, [client, snapshot])

  return snapshot.result
}

/** `select` for hooks that return the value. */
export function selectValue<T>(details: Details<T>): T {
  return details.value
}

/** `select` for hooks that return the details. */
export function selectDetails<T>(details: Details<T>): Details<T> {
  return details
}

/** Two evaluations that show the same thing. */
export function sameDetails<T>(a: Details<T>, b: Details<T>): boolean {
  return (
    a === b ||
    (a.key === b.key &&
      Object.is(a.value, b.value) &&
      a.source === b.source &&
      a.reason === b.reason &&
      a.variant === b.variant &&
      a.metadata === b.metadata &&
      a.errorCode === b.errorCode &&
      a.updatedAt === b.updatedAt &&
      a.stale === b.stale)
  )
}
