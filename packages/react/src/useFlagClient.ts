import type { FlagClient } from '@holdfast/core'
import { useClientFor } from './FlagContext'

/**
 * The provider's client, for what the hooks do not cover: `logEvent`, `refresh`, `flush`,
 * `clearCache` on logout. The same object for the provider's life (a provider that had to
 * replace a client it closed passes the new one down). Must be called inside `<FlagProvider>`.
 */
export function useFlagClient(): FlagClient {
  return useClientFor('useFlagClient')
}
