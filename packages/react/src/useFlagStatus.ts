import { useSyncExternalStore } from 'react'
import type { Status } from '@holdfast/core'
import { useClientFor } from './FlagContext'

/**
 * The client's status: `loading`, `ready`, `stale` (values kept after a failed refresh) or
 * `error`, with the source of the values and the last error. Re-renders only when the status
 * changes, not on flag updates. Must be called inside `<FlagProvider>`.
 */
export function useFlagStatus(): Status {
  const client = useClientFor('useFlagStatus')
  // getStatus returns the same object until the status changes, so it is a valid snapshot.
  return useSyncExternalStore(client.subscribe, client.getStatus, client.getStatus)
}
