// Holdfast's status as OpenFeature provider events. The SDK keeps its own idea of the provider's
// status (READY after `initialize`, RECONCILING during a context change, …) and moves it on the
// events a provider emits; this keeps track of what the SDK believes and emits only a change.
import { ErrorCode, ProviderEvents, type OpenFeatureEventEmitter, type ProviderEmittableEvents } from '@openfeature/web-sdk'
import type { Logger, Status } from '@holdfast/core'
import { toErrorCode } from './resolution'

/** What the SDK believes the provider's status is, as far as the provider's events go. */
export type Reported = 'NOT_READY' | 'READY' | 'STALE' | 'ERROR'

export interface StatusEvents {
  /** Records what the SDK said itself (its READY after `initialize`, its ERROR after a rejection). */
  set(reported: Reported): void
  /** Emits READY / STALE / ERROR when Holdfast's state differs from what the SDK believes. */
  sync(status: Status, contextMissing: boolean): void
  /** Emits any provider event; a throwing app handler is logged, never rethrown. */
  emit(event: ProviderEmittableEvents, details?: Record<string, unknown>): void
}

export function createStatusEvents(events: OpenFeatureEventEmitter, logger: Logger): StatusEvents {
  let reported: Reported = 'NOT_READY'
  // What this provider's own events last said. A MultiProvider around it knows its state only from
  // them (not from the SDK's READY after a context change), so a state that differs from either
  // is said, even when the SDK already believes it (then the READY is a harmless repeat).
  let said: Reported = 'READY'

  function emit(event: ProviderEmittableEvents, details: Record<string, unknown> = {}) {
    try {
      events.emit(event, details as never)
    } catch (error) {
      logger.error('[holdfast] an OpenFeature event handler threw', error)
    }
  }

  return {
    set: (next) => void (reported = next),
    emit,
    sync(status, contextMissing) {
      const next = target(status, contextMissing)
      if (next === undefined || (next === reported && next === said)) return
      reported = said = next
      const metadata: Record<string, string | number | boolean> = { state: status.state, source: status.source }
      if (status.error) metadata.code = status.error.code
      if (status.error?.httpStatus !== undefined) metadata.httpStatus = status.error.httpStatus
      if (status.lastSuccessAt !== undefined) metadata.lastSuccessAt = status.lastSuccessAt
      if (next === 'READY') emit(ProviderEvents.Ready, { metadata })
      else if (next === 'STALE') emit(ProviderEvents.Stale, { message: status.error?.message ?? 'the latest attempt failed; serving the last known values', metadata })
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
  if (status.state === 'ready') return 'READY'
  if (status.state === 'stale') return 'STALE'
  if (status.state === 'error') return 'ERROR'
  return undefined // loading: nothing new to say until the attempt ends
}

/** The OpenFeature error code for a Holdfast status error (`INVALID_CONTEXT`, else `GENERAL`). */
export function statusErrorCode(status: Status): ErrorCode {
  const code = status.error?.code
  if (code === undefined) return ErrorCode.GENERAL
  return toErrorCode(code)
}
