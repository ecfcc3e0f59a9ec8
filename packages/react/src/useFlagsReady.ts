import { useContext, useEffect, useRef, useState, useSyncExternalStore } from 'react'
import type { Status } from '@holdfast/core'
import { SwitchingContext, useClientFor } from './FlagContext'

/**
 * Whether the flag-dependent part of the page can be shown without a flash: true once the client
 * has this user's values (bootstrap, cache or network), has finished reading the cache (whatever it
 * held: then the fallback or defaults are the best the page can know before the network answers),
 * has failed an attempt, or `timeoutMs` (default 100) has passed since mount. Once true it stays
 * true: a later user switch keeps the previous values on screen rather than hiding the page. What
 * another user settled does not count (a provider mounting with a new user's `context` on a shared
 * client). False on the server and in the hydrating render unless a bootstrap gave values, so
 * markup matches.
 * Must be called inside `<FlagProvider>`.
 */
export function useFlagsReady(timeoutMs = 100): boolean {
  const client = useClientFor('useFlagsReady')
  // Not while the provider is taking a new user (FlagProvider): what is settled is the previous one.
  const switching = useContext(SwitchingContext)
  // Hydrated with the status at creation, as the server rendered it (see useFlagStatus).
  const known = useSyncExternalStore(client.subscribe, () => settled(client.getStatus()), () => settled(client.getStatus(true))) && !switching
  const [late, setLate] = useState(false)
  const once = useRef(false)
  if (known) once.current = true
  useEffect(() => {
    if (known || late || once.current) return
    const ms = typeof timeoutMs === 'number' && timeoutMs >= 0 && timeoutMs < 2 ** 31 ? timeoutMs : 100
    const timer = setTimeout(() => setLate(true), ms)
    return () => clearTimeout(timer)
  }, [known, late, timeoutMs])
  return known || late || once.current
}

function settled(status: Status): boolean {
  return status.state !== 'loading' || status.cacheRead === true
}
