import { FlagdCore, MemoryStorage } from '@openfeature/flagd-core'
import type { Logger } from '@openfeature/core'

/** A JSON value as a flag variant may hold it. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }

/** Flag or flag-set metadata: flat, primitive values only (flagd schema). */
export type FlagMetadata = Record<string, string | number | boolean>

/**
 * One flag in the flagd format. `targeting` is a JsonLogic rule (with flagd's `fractional`,
 * `starts_with`, `ends_with` and `sem_ver`); it returns a variant name, or null for the default.
 */
export interface FlagdFlag {
  state: 'ENABLED' | 'DISABLED'
  variants: Record<string, JsonValue>
  /** A key of `variants`; null or absent means "use the caller's default" (flagd "code default"). */
  defaultVariant?: string | null
  targeting?: Record<string, unknown>
  metadata?: FlagMetadata
}

/**
 * A whole flagd flag file: `{ "$schema"?, "flags": {...}, "$evaluators"?, "metadata"? }`.
 * `$evaluators` holds shared rules that targeting references as `{"$ref": "name"}`.
 */
export interface FlagdDefinitions {
  $schema?: string
  flags: Record<string, FlagdFlag>
  $evaluators?: Record<string, unknown>
  metadata?: FlagMetadata
}

/** The outcome of {@link parseFlagDefinitions}: a ready evaluator, or why there is none. */
export type ParsedFlags = { ok: true; core: FlagdCore; count: number } | { ok: false; error: string }

// flagd-core logs targeting that fails to compile; the flag then answers PARSE_ERROR per flag, so
// the log line is the only place the author learns why. Schema chatter at debug level is dropped.
function coreLogger(warn: (message: string) => void): Logger {
  return { error: (...a: unknown[]) => warn(a.join(' ')), warn: (...a: unknown[]) => warn(a.join(' ')), info() {}, debug() {} }
}

/**
 * Parses flagd JSON text into a fresh `FlagdCore`, never touching the one in service, so a broken
 * edit can be refused while the previous definitions keep answering.
 *
 * `strict` (default true) rejects anything flagd's JSON schema rejects, including a typo in one
 * flag's targeting. With `strict: false` schema problems are only warned about, as flagd itself
 * does, and a flag whose targeting cannot be compiled answers a per-flag `PARSE_ERROR`. Either way
 * text that is not JSON, has no `flags` object, or breaks flagd-core's structural rules (state
 * `ENABLED`/`DISABLED`, `defaultVariant` one of the variants) is refused.
 */
export function parseFlagDefinitions(
  text: string,
  options: { strict?: boolean; warn?: (message: string) => void } = {},
): ParsedFlags {
  const warn = options.warn ?? (() => {})
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    return { ok: false, error: `not valid JSON (${(error as Error).message})` }
  }
  // flagd-core's lenient mode would accept `{}` as zero flags: a truncated or half-written file
  // must never turn into "every flag is gone".
  if (!isObject(parsed) || !isObject(parsed.flags)) return { ok: false, error: 'expected an object with a "flags" object' }
  const structural = structureProblem(parsed.flags)
  if (structural) return { ok: false, error: structural }
  const logger = coreLogger(warn)
  const storage = new MemoryStorage(logger)
  try {
    storage.setConfigurations(text, options.strict ?? true)
  } catch (error) {
    return { ok: false, error: describeParseError(error) }
  }
  return { ok: true, core: new FlagdCore(storage, logger), count: storage.getFlags().size }
}

// flagd-core puts ajv's errors into the message as pretty JSON, one per schema alternative tried
// (dozens for one typo in a rule), and wraps structural failures in `cause`. One short line per
// offending location is what an author can act on.
function describeParseError(error: unknown): string {
  const err = error as Error & { cause?: unknown }
  const schemaErrors = err.message.match(/^[^[]*:\s*(\[[\s\S]*\])\s*$/)?.[1]
  if (schemaErrors) {
    try {
      const byPath = new Map<string, string>()
      for (const e of JSON.parse(schemaErrors) as Array<{ instancePath?: string; message?: string; params?: Record<string, unknown> }>) {
        const path = e.instancePath || '/'
        const detail = e.params?.additionalProperty ?? e.params?.missingProperty ?? e.params?.allowedValues
        if (!byPath.has(path)) byPath.set(path, `${path}: ${e.message}${detail === undefined ? '' : ` (${JSON.stringify(detail)})`}`)
      }
      // "must match a schema in anyOf" only restates that a child failed; keep it when alone.
      const specific = [...byPath.values()].filter((line) => !/must match (a|exactly one) schema in/.test(line))
      const lines = specific.length > 0 ? specific : [...byPath.values()]
      const shown = lines.slice(0, 3)
      const more = lines.length > shown.length ? `; and ${lines.length - shown.length} more` : ''
      return `does not match the flagd schema: ${shown.join('; ')}${more}`
    } catch {
      // Not the shape we know; fall through to the raw message.
    }
  }
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : ''
  return `${err.message}${cause}`.replace(/ from variants \{\}/, '').replace(/\s*\n\s*/g, ' ')
}

// The two rules flagd-core enforces even in lenient mode, checked here first so the message can
// name the flag (flagd-core's does not).
function structureProblem(flags: Record<string, unknown>): string | undefined {
  for (const [key, flag] of Object.entries(flags)) {
    if (!isObject(flag)) return `flag "${key}" must be an object`
    if (flag.state !== 'ENABLED' && flag.state !== 'DISABLED') return `flag "${key}": state must be "ENABLED" or "DISABLED", got ${JSON.stringify(flag.state)}`
    if (!isObject(flag.variants)) return `flag "${key}": variants must be an object`
    const { defaultVariant } = flag
    if (typeof defaultVariant === 'string' && defaultVariant !== '' && !Object.prototype.hasOwnProperty.call(flag.variants, defaultVariant)) {
      return `flag "${key}": defaultVariant "${defaultVariant}" is not one of its variants (${Object.keys(flag.variants).join(', ')})`
    }
  }
  return undefined
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
