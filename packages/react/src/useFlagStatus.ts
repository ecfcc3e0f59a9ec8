import { useContext, useMemo, useSyncExternalStore } from 'react'
import type { Status } from '@holdfast/core'
import { SwitchingContext, useClientFor } from './FlagContext'

/**
 * The client's status: `loading`, `ready`, `stale` (values kept after a failed refresh) or
 * `error`, with the source of the values and the last error. Re-renders only when the status
 * changes, not on flag updates. Must be called inside `<FlagProvider>`.
 */
export function useFlagStatus(): Status {
  const client = useClientFor('useFlagStatus')
  // getStatus returns the same object until the status changes, so it is a valid snapshot.
  // Hydrated with the status at creation, as the server rendered it (a late <Suspense> boundary
  // hydrates after the cache or the network moved it; React re-renders it at once).
  const status = useSyncExternalStore(client.subscribe, client.getStatus, () => client.getStatus(true))
  // The provider is taking a new user (FlagProvider): nothing of theirs is known yet. One object
  // for as long as that lasts, as for a real status (a prop without a targetingKey lasts).
  const standIn = useMemo((): Status => ({ state: 'loading', source: 'none', storage: status.storage }), [status.storage])
  return useContext(SwitchingContext) ? standIn : status
}
