import type { Details } from '@holdfast/core'
import { sameDetails, selectDetails, useFlag } from './useFlag'

/**
 * Everything known about one flag: value (or `defaultValue`, required), source, reason, variant,
 * metadata, `errorCode` and `stale`. Unlike the value hooks it also re-renders when only the
 * freshness changes (a failed refresh marks the flag `stale`), since that is what it reports.
 * The exposure is logged after commit. Must be called inside `<FlagProvider>`.
 */
export function useFlagDetails<T>(key: string, defaultValue: T): Details<T> {
  return useFlag('useFlagDetails', key, defaultValue, selectDetails, sameDetails)
}
