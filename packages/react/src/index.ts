// The public surface of @holdfast/react: every name is listed here. The core's public surface is
// re-exported, so client code imports `createClient` and the types from one package. This entry is
// a 'use client' module: a server component (Next.js App Router) must import `fetchBootstrap` from
// `@holdfast/core` — called through this entry on the server, it is a client reference and fails.
export { FlagProvider } from './FlagProvider'
export type { FlagProviderClientProps, FlagProviderOptionsProps, FlagProviderProps } from './FlagProvider'
export { useGate } from './useGate'
export { useConfig } from './useConfig'
export { useValue } from './useValue'
export { useFlagDetails } from './useFlagDetails'
export { useFlagStatus } from './useFlagStatus'
export { useFlagClient } from './useFlagClient'
export { useEventStats } from './useEventStats'
export { useFlagsReady } from './useFlagsReady'
export { FlagsReady } from './FlagsReady'
export type { FlagsReadyProps } from './FlagsReady'
export * from '@holdfast/core'
