// One evaluation for HoldfastWebProvider: the caller's default with an error where nothing is
// served as this user's (no targetingKey, another user's context, another user's values held,
// not yet known), else the client's details as OpenFeature's. providerCore.ts holds the state.
import { ErrorCode, type EvaluationContext as OpenFeatureContext, type FlagMetadata, type ResolutionDetails } from '@openfeature/web-sdk'
import type { Details, FlagClient, Logger } from '@holdfast/core'
import { read, type ChangeTracker } from './changeTracker'
import { toFlagMetadata, toResolution } from './resolution'
import { statusErrorCode } from './statusEvents'

/** What an evaluation asks for (`object`: an object or an array) whatever the default. */
export type EvaluatedType = 'boolean' | 'string' | 'number' | 'object'

/**
 * `contextMissing`: the OpenFeature context names no user; `foreignContext`: whether `context` (or
 * the client's own) is another user's; `foreign`: the client holds another user's values only.
 */
export function evaluate<T>(
  client: FlagClient | undefined,
  contextMissing: boolean,
  foreignContext: (context?: OpenFeatureContext) => unknown,
  foreign: boolean,
  tracker: ChangeTracker,
  logger: Logger,
  key: string,
  defaultValue: T,
  type: EvaluatedType,
  context?: OpenFeatureContext,
): ResolutionDetails<T> {
  try {
    // The caller's default with an error, whose flagMetadata says so like every other (CONTRACT §11):
    // by default source `default` and the `stale` the client's own details give this key now (a
    // context it does not serve, no targetingKey: stale while its latest attempt failed, §3, as
    // getDetails says), false with no client to ask; where its value is refused, its details' own.
    // (A closure per evaluation: 4 B less than a module-level helper, and beside the SDK's own
    // allocations per evaluation, nothing.)
    const refuse = (
      errorCode: ErrorCode,
      errorMessage: string,
      flagMetadata: FlagMetadata = { source: 'default', stale: !!client && read(client, key).stale },
    ): ResolutionDetails<T> => ({
      value: defaultValue,
      reason: 'ERROR',
      errorCode,
      errorMessage,
      flagMetadata,
    })
    if (contextMissing) return refuse(ErrorCode.TARGETING_KEY_MISSING, 'the OpenFeature context has no targetingKey')
    if (foreignContext(context)) return refuse(ErrorCode.INVALID_CONTEXT, "another user's context")
    if (!client) return refuse(ErrorCode.PROVIDER_NOT_READY, 'the provider is not initialized')
    // The client reads a `null` (or missing, in plain JS) default as "any type"; an evaluation
    // of a type with one (an optional structure, `getBooleanValue(key)`) must not hand out a
    // value of another type, nor log it as exposed. A flag sent without a value is that default.
    const loose = defaultValue == null
    const details: Details<T> = client.getDetails(key, defaultValue, { exposure: !loose })
    if (loose) {
      if (details.value != null && typeof details.value != type) return refuse(ErrorCode.TYPE_MISMATCH, `flag "${key}" is not ${type}`, toFlagMetadata(details))
      client.logExposure(details)
    }
    if (details.source == 'fallback') tracker.watch(key)
    // Values that claim a user's own source while the client holds nothing of this context's
    // belong to the previous user: the caller's default instead. A `fallback` value is for
    // anyone and stays. A flag missing then is not FLAG_NOT_FOUND: the failure is the reason.
    // (Its flagMetadata is the client's, which has dropped the previous user's values by then: source default.)
    if (foreign && details.source != 'fallback') {
      const status = client.getStatus()
      return refuse(statusErrorCode(status), `no values for this context: ${status.error?.message ?? 'the latest attempt failed'}`, toFlagMetadata(details))
    }
    // Nor while this context's first answer is out with nothing standing in (a login after a
    // logout, a switch after a failed one): not yet known is not missing.
    if (details.errorCode == 'FLAG_NOT_FOUND' && client.getStatus().state == 'loading')
      return refuse(ErrorCode.PROVIDER_NOT_READY, 'no values for this context yet')
    // A held flag whose value is the default may be a flag the server sent without a value.
    const valueless =
      details.source !== 'default' && details.errorCode === undefined && details.value === defaultValue && read(client, key).value === null
    // TYPE_MISMATCH is the caller's only when the held value is not the one served: a server's
    // per-flag TYPE_MISMATCH keeps its value, stale, as any other per-flag error does (§4).
    return toResolution(details, valueless, details.errorCode == 'TYPE_MISMATCH' && read(client, key).value !== details.value)
  } catch (error) {
    logger.error(`[holdfast] evaluating "${key}" failed unexpectedly`, error)
    return { value: defaultValue, reason: 'ERROR', errorCode: ErrorCode.GENERAL, errorMessage: String(error) }
  }
}
