// Holdfast's details of one evaluation, said the OpenFeature way. Pure: no client, no I/O.
//
// One rule shapes this file: the OpenFeature SDK replaces the value of any resolution that carries
// an `errorCode` with the caller's default (and its reason with ERROR). Holdfast keeps a flag's
// last known good value when the server reports a per-flag error, so such a flag is returned as a
// STALE value with the server's code in `flagMetadata.errorCode`, never as an OpenFeature error:
// passing the code on would throw the very value Holdfast kept away.
import { ErrorCode, StandardResolutionReasons, type FlagMetadata, type ResolutionDetails } from '@openfeature/web-sdk'
import type { Details } from '@holdfast/core'

const KNOWN_CODES = new Set<string>(Object.values(ErrorCode))

/** Holdfast's (or the server's) error code as an OpenFeature `ErrorCode`; unknown codes become `GENERAL`. */
export function toErrorCode(code: string): ErrorCode {
  return KNOWN_CODES.has(code) ? (code as ErrorCode) : ErrorCode.GENERAL
}

/** `flagMetadata`: the server's metadata for the flag, then Holdfast's `source`, `stale` and `updatedAt`. */
export function toFlagMetadata(details: Details<unknown>): FlagMetadata {
  const metadata: FlagMetadata = { ...details.metadata, source: details.source, stale: details.stale }
  if (details.updatedAt != null) metadata.updatedAt = details.updatedAt
  return metadata
}

/**
 * Maps one evaluation. `valueless` says the server sent this flag without a value (e.g. disabled),
 * so `details.value` is the caller's default although a flag is held. `mismatch`: the held value
 * is of another type than the caller's default (a server's own TYPE_MISMATCH keeps its value).
 *
 * | Holdfast                                      | OpenFeature                                   |
 * | --------------------------------------------- | --------------------------------------------- |
 * | missing flag (`FLAG_NOT_FOUND`)                | default, reason DEFAULT, `FLAG_NOT_FOUND` (*) |
 * | held value of another type (`mismatch`)        | default, reason ERROR, `TYPE_MISMATCH`        |
 * | per-flag error, no last known good             | default, reason DEFAULT, the code (or GENERAL)(*) |
 * | flag without a value (e.g. disabled)           | default, the server's reason (or DEFAULT)      |
 * | `stale` value (also with a per-flag error)     | the value, reason STALE                        |
 * | value from the cache                           | the value, reason CACHED                       |
 * | network or bootstrap value                     | the value, the server's reason (or UNKNOWN)    |
 *
 * (*) The SDK reports reason ERROR for any resolution with an `errorCode`.
 */
export function toResolution<T>(details: Details<T>, valueless: boolean, mismatch: boolean): ResolutionDetails<T> {
  const flagMetadata = toFlagMetadata(details)
  const code = details.errorCode
  if (details.source == 'default' || mismatch) {
    const errorCode = toErrorCode(code ?? 'GENERAL')
    if (code && code != errorCode) flagMetadata.errorCode = code
    return {
      value: details.value,
      // The caller's default is DEFAULT; a value held of another type is an ERROR. (The SDK says
      // ERROR for either, as for any resolution with an errorCode.)
      reason: mismatch ? StandardResolutionReasons.ERROR : StandardResolutionReasons.DEFAULT,
      errorCode,
      errorMessage: errorMessage(details.key, code),
      flagMetadata,
    }
  }
  if (code !== undefined) flagMetadata.errorCode = code
  const result: ResolutionDetails<T> = { value: details.value, flagMetadata }
  if (valueless) {
    // The server chose the caller's default (flagd: a disabled flag, reason DISABLED).
    result.reason = details.stale ? StandardResolutionReasons.STALE : (details.reason || StandardResolutionReasons.DEFAULT)
    return result
  }
  // `""` is how a server without `omitempty` (Go, Java) writes "none": no variant, and the reason
  // OpenFeature has for an unknown one, rather than an empty string in every evaluation's details.
  if (details.variant) result.variant = details.variant
  if (details.stale) result.reason = StandardResolutionReasons.STALE
  else if (details.source == 'cache') result.reason = StandardResolutionReasons.CACHED
  else result.reason = details.reason || StandardResolutionReasons.UNKNOWN
  return result
}

function errorMessage(key: string, code: string | undefined): string {
  switch (code) {
    case 'FLAG_NOT_FOUND':
    case undefined:
      return `flag "${key}" is not held for this context`
    case 'TYPE_MISMATCH':
      return `flag "${key}" holds another type than the default`
    default:
      return `the server answered ${code} for flag "${key}" and no earlier value is held`
  }
}
