import type { ReactElement, ReactNode } from 'react'
import { useFlagsReady } from './useFlagsReady'

/** Props of `<FlagsReady>`. */
export interface FlagsReadyProps {
  /** At most this long (ms after mount) is the page held. Default 100. */
  timeoutMs?: number
  /** Rendered while held (a skeleton, or nothing). Default `null`. */
  fallback?: ReactNode
  /** The flag-dependent part of the page. Default: none (nothing is rendered once ready). */
  children?: ReactNode
}

/**
 * Holds its children until the flags are known — the cache has been read, this user's values are
 * in, or an attempt failed — for at most `timeoutMs` (default 100) after mount, rendering
 * `fallback` (default nothing) meanwhile. So a returning user never sees the build-time fallback
 * flash before their cached values, and no exposure is logged for a value that only stood in.
 * With a server-rendered `bootstrap` the children render at once, on the server too. Must be
 * used inside `<FlagProvider>`.
 */
export function FlagsReady({ timeoutMs = 100, fallback = null, children }: FlagsReadyProps): ReactElement {
  return <>{useFlagsReady(timeoutMs) ? children : fallback}</>
}
