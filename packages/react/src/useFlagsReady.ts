import { useEffect, useState, useSyncExternalStore } from 'react'
import type { Status } from '@holdfast/core'
import { useClientFor } from './FlagContext'

/**
 * Whether the flag-dependent part of the page can be shown without a flash: true once the client
 * has this user's values (bootstrap, cache or network), has finished reading the cache (whatever it
 * held: then the fallback or defaults are the best the page can know before the network answers),
 * has failed an attempt, or `timeoutMs` (default 100) has passed since mount. False on the server
 * and in the hydrating render unless a bootstrap gave values, so markup matches. Must be called
 * inside `<FlagProvider>`.
 */
export function useFlagsReady(timeoutMs = 100): boolean {
  const client = useClientFor('useFlagsReady')
  const known = useSyncExternalStore(client.subscribe, () => settled(client.getStatus()), () => settled(client.getStatus()))
  const [late, setLate] = useState(false)
  useEffect(() => {
    if (known || late) return
    const ms = typeof timeoutMs === 'number' && timeoutMs >= 0 && timeoutMs < Infinity ? timeoutMs : 100
    const timer = setTimeout(() => setLate(true), ms)
    return () => clearTimeout(timer)
  }, [known, late, timeoutMs])
  return known || late
}

function settled(status: Status): boolean {
  return status.state !== 'loading' || status.cacheRead === true
}
