// Holdfast's status as OpenFeature provider events. The SDK keeps its own idea of the provider's
// status (READY after `initialize`, RECONCILING during a context change, …) and moves it on the
// events a provider emits; this keeps track of what the SDK believes and emits only a change.
import { ErrorCode, ProviderEvents, type OpenFeatureEventEmitter, type ProviderEmittableEvents } from '@openfeature/web-sdk'
import type { Logger, Status } from '@holdfast/core'
import { toErrorCode } from './resolution'

/** What the SDK believes the provider's status is, as far as the provider's events go. */
export type Reported = 'READY' | 'STALE' | 'ERROR'

export interface StatusEvents {
  /**
   * Records what the SDK said itself (its READY after `initialize` or a context change, its ERROR
   * after a rejection). `sdkOnly`: a MultiProvider around this one did not hear it (the READY after
   * a context change), so the provider's own last word still stands for it.
   */
  set(reported: Reported, sdkOnly?: boolean): void
  /** Emits READY / STALE / ERROR when Holdfast's state differs from what the SDK believes. */
  sync(status: Status, contextMissing: boolean): void
  /** Emits any provider event; a throwing app handler is logged, never rethrown. */
  emit(event: ProviderEmittableEvents, details?: Record<string, unknown>): void
}

export function createStatusEvents(events: OpenFeatureEventEmitter, logger: Logger): StatusEvents {
  // Read only once an initialize has settled (and set it): its first value is never compared.
  let reported: Reported = 'READY'
  // What this provider's own events (or the SDK's, where they reach a MultiProvider too) last said.
  // A MultiProvider around it knows its state only from them, not from the SDK's READY after a
  // context change, so a state that differs from either is said, even when the SDK already
  // believes it (then the READY is a harmless repeat).
  let said: Reported = reported

  function emit(event: ProviderEmittableEvents, details: Record<string, unknown> = {}) {
    try {
      events.emit(event, details as never)
    } catch (error) {
      logger.error('[holdfast] an OpenFeature event handler threw', error)
    }
  }

  return {
    set(next, sdkOnly) {
      reported = next
      if (!sdkOnly) said = next
    },
    emit,
    sync(status, contextMissing) {
      const next = target(status, contextMissing)
      if (!next || (next == reported && next == said)) return
      reported = said = next
      const metadata: Record<string, string | number | boolean> = { state: status.state, source: status.source }
      if (status.error) metadata.code = status.error.code
      if (status.error?.httpStatus != null) metadata.httpStatus = status.error.httpStatus
      if (status.lastSuccessAt != null) metadata.lastSuccessAt = status.lastSuccessAt
      if (next == 'READY') emit(ProviderEvents.Ready, { metadata })
      else if (next == 'STALE') emit(ProviderEvents.Stale, { message: status.error?.message ?? 'the latest attempt failed', metadata })
      else
        emit(ProviderEvents.Error, {
          message: contextMissing ? 'the OpenFeature context has no targetingKey' : (status.error?.message ?? 'no flag values'),
          // Never PROVIDER_FATAL: the SDK would stop asking the provider, and held values must still be served.
          errorCode: contextMissing ? ErrorCode.TARGETING_KEY_MISSING : statusErrorCode(status),
          metadata,
        })
    },
  }
}

function target(status: Status, contextMissing: boolean): Reported | undefined {
  if (contextMissing) return 'ERROR'
  // ready, stale, error: READY, STALE, ERROR. Loading: nothing new to say until the attempt ends.
  if (status.state != 'loading') return status.state.toUpperCase() as Reported
}

/** The OpenFeature error code for a Holdfast status error (`INVALID_CONTEXT`, else `GENERAL`). */
export function statusErrorCode(status: Status): ErrorCode {
  // No code (or an empty one) is GENERAL, as an unknown one is.
  return toErrorCode(status.error?.code || ErrorCode.GENERAL)
}
