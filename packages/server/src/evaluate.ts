import type { FlagdCore } from '@openfeature/flagd-core'
import type { EvaluationContext, Logger } from '@openfeature/core'
import type { FlagMetadata, JsonValue } from './flagDefinitions'

/** A successful OFREP flag evaluation. No `value` means "use the caller's default" (e.g. disabled). */
export interface OfrepSuccess {
  key: string
  value?: JsonValue
  reason: string
  variant?: string
  metadata?: FlagMetadata
}

/** A failed OFREP flag evaluation (`PARSE_ERROR`, `GENERAL`, `FLAG_NOT_FOUND`, ...). */
export interface OfrepFailure {
  key: string
  errorCode: string
  errorDetails?: string
  metadata?: FlagMetadata
}

/** One entry of an OFREP bulk response. */
export type OfrepEntry = OfrepSuccess | OfrepFailure

/** The body of a 200 OFREP bulk response. */
export interface OfrepBulkResponse {
  flags: OfrepEntry[]
  metadata?: FlagMetadata
}

/** A request-level OFREP failure (a 400 body). */
export interface OfrepRequestError {
  errorCode: 'PARSE_ERROR' | 'INVALID_CONTEXT' | 'TARGETING_KEY_MISSING'
  errorDetails: string
}

const quiet: Logger = { error() {}, warn() {}, info() {}, debug() {} }

/**
 * Reads an OFREP evaluation request body, tolerantly: a missing `context` is an empty context and
 * unknown fields are ignored. The only hard requirement is a non-empty string `targetingKey`, which
 * client-side (static context) evaluation needs for stable `fractional` bucketing.
 */
export function readEvaluationRequest(text: string): { ok: true; context: EvaluationContext } | { ok: false; error: OfrepRequestError } {
  let body: unknown
  try {
    body = text.trim() === '' ? {} : JSON.parse(text)
  } catch {
    return { ok: false, error: { errorCode: 'PARSE_ERROR', errorDetails: 'the request body is not valid JSON' } }
  }
  if (!isObject(body)) return { ok: false, error: { errorCode: 'INVALID_CONTEXT', errorDetails: 'the request body must be a JSON object' } }
  const context = body.context ?? {}
  if (!isObject(context)) return { ok: false, error: { errorCode: 'INVALID_CONTEXT', errorDetails: '"context" must be an object' } }
  const { targetingKey } = context
  if (targetingKey === undefined || targetingKey === null || targetingKey === '') {
    return { ok: false, error: { errorCode: 'TARGETING_KEY_MISSING', errorDetails: 'the context has no targetingKey' } }
  }
  if (typeof targetingKey !== 'string') {
    return { ok: false, error: { errorCode: 'INVALID_CONTEXT', errorDetails: 'targetingKey must be a string' } }
  }
  return { ok: true, context: context as EvaluationContext }
}

/**
 * Evaluates one flag into an OFREP entry.
 *
 * A DISABLED flag is a success with reason `DISABLED` and no value or variant: the OFREP schema
 * lists `DISABLED` among the success reasons and has a value-less "code default" success, and
 * flagd's testbed expects exactly that (reason DISABLED, the caller's default, no variant). Clients
 * then fall back to their own default instead of treating the flag as unknown. A flag without a
 * default variant whose targeting picks nothing is likewise a value-less `DEFAULT` success.
 */
export function evaluateEntry(core: FlagdCore, key: string, context: EvaluationContext): OfrepEntry | undefined {
  const flag = core.getFlags().get(key)
  if (!flag) return undefined
  const metadata = nonEmpty(flag.metadata as FlagMetadata)
  if (flag.state === 'DISABLED') return withMetadata({ key, reason: 'DISABLED' }, metadata)
  try {
    const result = flag.evaluate(context, quiet)
    if (result.reason === 'ERROR') {
      return withMetadata({ key, errorCode: String(result.errorCode), errorDetails: result.errorMessage }, metadata)
    }
    const entry: OfrepSuccess = { key, reason: result.reason }
    if (result.value !== undefined) entry.value = result.value as JsonValue
    if (result.variant !== undefined) entry.variant = result.variant
    return withMetadata(entry, metadata)
  } catch (error) {
    // flagd-core catches targeting errors itself; this is for anything it did not foresee, so one
    // odd flag becomes one failure entry rather than a 500 for the whole set.
    return withMetadata({ key, errorCode: 'GENERAL', errorDetails: (error as Error).message }, metadata)
  }
}

/** Evaluates every flag, disabled ones included (see {@link evaluateEntry}), in definition order. */
export function evaluateAll(core: FlagdCore, context: EvaluationContext): OfrepBulkResponse {
  const flags: OfrepEntry[] = []
  for (const key of core.getFlags().keys()) {
    const entry = evaluateEntry(core, key, context)
    if (entry) flags.push(entry)
  }
  const metadata = nonEmpty(core.getFlagSetMetadata() as FlagMetadata)
  return metadata ? { flags, metadata } : { flags }
}

/** True when an entry is a failure. */
export function isFailure(entry: OfrepEntry): entry is OfrepFailure {
  return 'errorCode' in entry
}

function withMetadata<T extends OfrepEntry>(entry: T, metadata: FlagMetadata | undefined): T {
  if (metadata) entry.metadata = metadata
  return entry
}

function nonEmpty(metadata: FlagMetadata | undefined): FlagMetadata | undefined {
  return metadata && Object.keys(metadata).length > 0 ? metadata : undefined
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
