import { createContext, useContext } from 'react'
import type { FlagClient } from '@holdfast/core'

/** The client of the nearest `<FlagProvider>`; internal, reached through the hooks. */
export const FlagContext = createContext<FlagClient | null>(null)

/**
 * True while the nearest provider renders a new user's `context` prop before switching its client
 * to them, or sits, with the same client, inside one that does (FlagProvider); internal. Until the
 * switch lands the client holds the previous user's values: the hooks show the defaults,
 * `loading`, and log no exposure meanwhile.
 */
export const SwitchingContext = createContext(false)

/** The provider's client, or a programmer error naming the hook that was called outside one. */
export function useClientFor(hook: string): FlagClient {
  const client = useContext(FlagContext)
  if (!client) throw new Error(`[holdfast] ${hook} must be used inside <FlagProvider>`)
  return client
}
