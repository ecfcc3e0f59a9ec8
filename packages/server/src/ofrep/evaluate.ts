import type { FlagdCore } from '@openfeature/flagd-core'
import type { EvaluationContext, Logger } from '@openfeature/core'
import type { FlagMetadata, JsonValue } from '../flags/flagDefinitions'
import { DEFAULT_REQUEST_LIMITS, evaluationRequestSchema, type RequestErrorCode, type RequestLimits } from './schemas'

/** A successful OFREP flag evaluation. No `value` means "use the caller's default" (e.g. disabled). */
export interface OfrepSuccess {
  /** The flag's key. */
  key: string
  /** The evaluated value; absent means "use the caller's default" (a disabled flag, a null variant). */
  value?: JsonValue
  /** Why this value (`STATIC`, `TARGETING_MATCH`, `DEFAULT`, `DISABLED`, ...). */
  reason: string
  /** The name of the variant served; absent when the caller's default stands. */
  variant?: string
  /** Flat metadata of the flag (its own over the document's). */
  metadata?: FlagMetadata
}

/** A failed OFREP flag evaluation (`PARSE_ERROR`, `GENERAL`, `FLAG_NOT_FOUND`, ...). */
export interface OfrepFailure {
  /** The flag's key. */
  key: string
  /**
   * What failed (`PARSE_ERROR`, `GENERAL`, `FLAG_NOT_FOUND`, ...). A Holdfast client removes the flag
   * on `FLAG_NOT_FOUND` (the caller's default) and, on any other code, keeps its last known good
   * value, marked stale (the caller's default when it holds none).
   */
  errorCode: string
  /** A human-readable account of the failure, for logs. */
  errorDetails?: string
  /** Flat metadata of the flag, when it has any. */
  metadata?: FlagMetadata
}

/** One entry of an OFREP bulk response. */
export type OfrepEntry = OfrepSuccess | OfrepFailure

/** The body of a 200 OFREP bulk response. */
export interface OfrepBulkResponse {
  /** One entry per flag: a success or a failure. */
  flags: OfrepEntry[]
  /** Flat flag-set metadata of the document served. */
  metadata?: FlagMetadata
}

/** A request-level OFREP failure (a 400 body). */
export interface OfrepRequestError {
  errorCode: RequestErrorCode
  errorDetails: string
}

const quiet: Logger = { error() {}, warn() {}, info() {}, debug() {} }

/**
 * Reads an OFREP evaluation request body with {@link evaluationRequestSchema}: a missing or
 * empty body or `context` is an empty context (so 400 `TARGETING_KEY_MISSING`), unknown body
 * fields are ignored, and the context must hold a non-empty string `targetingKey` (client-side
 * `fractional` bucketing needs it) and stay within `limits`.
 */
export function readEvaluationRequest(
  text: string,
  limits: RequestLimits = DEFAULT_REQUEST_LIMITS,
): { ok: true; context: EvaluationContext } | { ok: false; error: OfrepRequestError } {
  let body: unknown
  try {
    body = text.trim() === '' ? {} : JSON.parse(text)
  } catch {
    return { ok: false, error: { errorCode: 'PARSE_ERROR', errorDetails: 'the request body is not valid JSON' } }
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, error: { errorCode: 'INVALID_CONTEXT', errorDetails: 'the request body must be a JSON object' } }
  }
  const raw = body as Record<string, unknown>
  const parsed = schemaFor(limits).safeParse(raw.context === undefined || raw.context === null ? { ...raw, context: {} } : raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const code = (issue as { params?: { errorCode?: RequestErrorCode } }).params?.errorCode ?? 'INVALID_CONTEXT'
    return { ok: false, error: { errorCode: code, errorDetails: issue.message } }
  }
  return { ok: true, context: parsed.data.context as EvaluationContext }
}

const schemas = new WeakMap<RequestLimits, ReturnType<typeof evaluationRequestSchema>>()
function schemaFor(limits: RequestLimits) {
  let schema = schemas.get(limits)
  if (!schema) schemas.set(limits, (schema = evaluationRequestSchema(limits)))
  return schema
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

