// The one internal hook under useGate, useConfig, useValue and useFlagDetails: the client's
// per-reader observer (one memo per reader, in the core) wired to `useSyncExternalStore`, and the
// exposure logged after commit.
import { useContext, useEffect, useMemo, useSyncExternalStore } from 'react'
import { observeFlag, type Details } from '@holdfast/core'
import { SwitchingContext, useClientFor } from './FlagContext'
import { useStableValue } from './useStableValue'

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
  // `select` and `equal` are module-level constants of each public hook.
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const observer = useMemo(() => observeFlag(client, key, stableDefault, select, equal), [client, key, stableDefault])

  // The client applies `bootstrap` synchronously at creation, so the server render, the
  // hydrating render and the first client render all read the same values. A part of the page
  // that hydrates late (a <Suspense> boundary whose code still loads) does so after the cache or
  // the network changed them: it is hydrated with what the client held at creation, as the server
  // was, and React re-renders it with the newer values at once.
  const snapshot = useSyncExternalStore(observer.subscribe, observer.get, observer.getServer)

  // After commit, never during render: a render may be thrown away (StrictMode, Suspense,
  // concurrent interruptions) and must not count as the user having seen the value. The client
  // de-duplicates per (user, flag, value, variant), so StrictMode's second run logs nothing. Values
  // that only stand in (the previous user's during a switch, fallback while the cache is read)
  // are not exposures.
  // Nor for a render made for the previous user: the provider switches the client in a layout
  // effect, before this one runs, and the new user's cached values may already be held (exposable).
  // And none while the provider is taking a new user (FlagProvider): the previous user's values,
  // which the client still holds, stand in as the default until the switch lands.
  const switching = useContext(SwitchingContext)
  useEffect(() => {
    if (!switching && snapshot.exposable && snapshot.who === client.getContext()) client.logExposure(snapshot.details)
  }, [client, snapshot, switching])

  // One object for as long as it stands in (a prop without a targetingKey is never switched to):
  // a fresh one per render would re-run every effect that depends on it, and loop one that sets state.
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const standIn = useMemo(() => select({ key, value: stableDefault, source: 'default', stale: true }), [key, stableDefault])
  return switching ? standIn : snapshot.result
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
