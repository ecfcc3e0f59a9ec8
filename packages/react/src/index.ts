// The public surface of @holdfast/react: every name is listed here. The core's public surface is
// re-exported, so an app imports `createClient`, `fetchBootstrap` and the types from one package.
export { FlagProvider } from './FlagProvider'
export type { FlagProviderClientProps, FlagProviderOptionsProps, FlagProviderProps } from './FlagProvider'
export { useGate } from './useGate'
export { useConfig } from './useConfig'
export { useValue } from './useValue'
export { useFlagDetails } from './useFlagDetails'
export { useFlagStatus } from './useFlagStatus'
export { useFlagClient } from './useFlagClient'
export { useEventStats } from './useEventStats'
export * from '@holdfast/core'
