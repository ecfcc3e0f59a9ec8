import { useSyncExternalStore } from 'react'
import type { EventStats } from '@holdfast/core'
import { useClientFor } from './FlagContext'

/**
 * The event queue's counts — `{ queued, sent, dropped, retries }` — for an app that shows
 * "3 events waiting to send". Re-renders when the counts move. Must be called inside `<FlagProvider>`.
 */
export function useEventStats(): EventStats {
  const client = useClientFor('useEventStats')
  // getEventStats returns the same object until a count moves, so it is a valid snapshot.
  return useSyncExternalStore(client.subscribe, client.getEventStats, client.getEventStats)
}
