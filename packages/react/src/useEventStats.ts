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
  // Hydrated with the counts at creation (zero), as the server rendered them; this tab's persisted
  // queue may have been read by the time a late <Suspense> boundary hydrates.
  return useSyncExternalStore(client.subscribe, client.getEventStats, () => client.getEventStats(true))
}
