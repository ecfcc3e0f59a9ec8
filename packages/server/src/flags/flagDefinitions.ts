import { createHash } from 'node:crypto'
import { FlagdCore, MemoryStorage, type FeatureFlag } from '@openfeature/flagd-core'
import { flagdDocumentSchema } from './schemas'
import { MAX_VALUE_DEPTH, valueDepth } from './valueDepth'
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
  /** `DISABLED` flags evaluate to the caller's default (reason `DISABLED`), as in flagd. */
  state: 'ENABLED' | 'DISABLED'
  /** The values the flag can take, by variant name. */
  variants: Record<string, JsonValue>
  /** A key of `variants`; null or absent means "use the caller's default" (flagd "code default"). */
  defaultVariant?: string | null
  /** A JsonLogic rule returning a variant name (null: the default); absent: always the default variant. */
  targeting?: Record<string, unknown>
  /** Flat metadata served with the flag's evaluations (over the document's `metadata`). */
  metadata?: FlagMetadata
}

/**
 * A whole flagd flag file: `{ "$schema"?, "flags": {...}, "$evaluators"?, "metadata"? }`.
 * `$evaluators` holds shared rules that targeting references as `{"$ref": "name"}`.
 */
export interface FlagdDefinitions {
  /** The flagd schema URL editors validate against; not read by the server. */
  $schema?: string
  /** The flags, by key. */
  flags: Record<string, FlagdFlag>
  /** Shared JsonLogic rules, by name, that targeting references as `{"$ref": "name"}`. */
  $evaluators?: Record<string, unknown>
  /** Flat flag-set metadata, served with every flag (a flag's own metadata wins). */
  metadata?: FlagMetadata
}

/** The outcome of {@link parseFlagDefinitions}: a ready evaluator, or why there is none. */
export type ParsedFlags =
  | {
      /** The document parsed and validated. */
      ok: true
      /** The flagd-core evaluator loaded with the flags. */
      core: FlagdCore
      /** How many flags it defines. */
      count: number
      /** The document as parsed. */
      definitions: FlagdDefinitions
      /** A content hash of the document's text (16 base64url characters of its SHA-256). */
      version: string
    }
  | {
      /** The document was refused. */
      ok: false
      /** Why: what did not parse or validate, for the log. */
      error: string
    }

/** Options of {@link parseFlagDefinitions} and {@link compileFlagDefinitions}. */
export interface ParseOptions {
  /** Refuse anything flagd's JSON schema refuses, and `$ref`s to a missing `$evaluator`. Default true. */
  strict?: boolean
  /** Where flagd-core's warnings about broken rules go. Default: dropped. */
  warn?: (message: string) => void
}

/** Deepest nesting of a flags document: {@link MAX_VALUE_DEPTH} levels of a variant value, plus the four around it. */
export const MAX_DOCUMENT_DEPTH = MAX_VALUE_DEPTH + 4

/** Flags compiled per slice by {@link compileFlagDefinitions} before it yields to the event loop: 25. */
export const COMPILE_SLICE = 25

// flagd-core logs targeting that fails to compile; the flag then answers PARSE_ERROR per flag, so
// the log line is the only place the author learns why. Schema chatter at debug level is dropped.
function coreLogger(warn: (message: string) => void): Logger {
  return { error: (...a: unknown[]) => warn(a.join(' ')), warn: (...a: unknown[]) => warn(a.join(' ')), info() {}, debug() {} }
}

/**
 * Parses flagd JSON text into a fresh `FlagdCore`, never touching the one in service, so a broken
 * edit can be refused while the previous definitions keep answering. Synchronous: for definitions
 * given in code. Files and remote documents go through {@link compileFlagDefinitions}, which
 * yields to the event loop between slices.
 *
 * `strict` (default true) rejects anything flagd's JSON schema rejects, including a typo in one
 * flag's targeting and a `$ref` to an `$evaluator` that does not exist. With `strict: false` schema
 * problems are only warned about, as flagd itself does, and a flag whose targeting cannot be
 * compiled answers a per-flag `PARSE_ERROR`. Either way text that is not JSON, has no `flags`
 * object, or breaks flagd-core's structural rules (state `ENABLED`/`DISABLED`, `defaultVariant`
 * one of the variants) is refused. A leading UTF-8 byte order mark is ignored.
 */
export function parseFlagDefinitions(text: string, options: ParseOptions = {}): ParsedFlags {
  const steps = compileSteps(text, options)
  for (;;) {
    const step = steps.next()
    if (step.done) return step.value
  }
}

/**
 * {@link parseFlagDefinitions} off the request path: the document is parsed and validated, then
 * compiled {@link COMPILE_SLICE} flags at a time with a macrotask between slices, so a 2 MB file
 * delays requests by one slice at a time rather than by the whole compile. The result is swapped
 * in by the caller only when everything succeeded.
 */
export async function compileFlagDefinitions(text: string, options: ParseOptions = {}): Promise<ParsedFlags> {
  const steps = compileSteps(text, options)
  for (;;) {
    const step = steps.next()
    if (step.done) return step.value
    await new Promise<void>((resolve) => setImmediate(resolve))
  }
}

function* compileSteps(raw: string, options: ParseOptions): Generator<void, ParsedFlags> {
  const strict = options.strict ?? true
  const warn = options.warn ?? (() => {})
  // Windows editors save UTF-8 with a byte order mark; JSON.parse refuses it.
  const text = raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw
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
  // flagd-core recurses through the document: past a depth that depends on how warm the process
  // is, it overflows. A long-running relay compiled (and saved) a variant nested ~2,500 deep that a
  // restarted one could not compile from its data dir. One explicit limit, below where a cold
  // process overflows, holds on both sides: a variant value may nest MAX_VALUE_DEPTH levels below
  // `{"flags":{KEY:{"variants":{NAME:…}}}}`, and nothing else in the document deeper.
  if (valueDepth(parsed, MAX_DOCUMENT_DEPTH) > MAX_DOCUMENT_DEPTH) return { ok: false, error: `the document is nested deeper than ${MAX_DOCUMENT_DEPTH} levels (a variant value at most ${MAX_VALUE_DEPTH})` }
  const document = flagdDocumentSchema.safeParse(parsed)
  if (!document.success) return { ok: false, error: describeZodIssue(document.error.issues[0]) }
  const evaluators = isObject(parsed.$evaluators) ? parsed.$evaluators : {}
  yield
  const logger = coreLogger(warn)
  const flags = new Map<string, FeatureFlag>()
  const keys = Object.keys(parsed.flags)
  for (let i = 0; i < keys.length || i === 0; i += COMPILE_SLICE) {
    // A null-prototype object keeps a flag named "__proto__" an own key through JSON.stringify.
    const slice: Record<string, unknown> = Object.create(null)
    for (const key of keys.slice(i, i + COMPILE_SLICE)) slice[key] = parsed.flags[key]
    const storage = new MemoryStorage(logger)
    try {
      storage.setConfigurations(JSON.stringify({ $evaluators: evaluators, metadata: parsed.metadata, flags: slice }), strict)
    } catch (error) {
      return { ok: false, error: describeParseError(error) }
    }
    for (const [key, flag] of storage.getFlags()) flags.set(key, flag)
    if (i + COMPILE_SLICE < keys.length) yield
  }
  if (strict) {
    const missing = missingEvaluator(parsed.flags, evaluators)
    if (missing) return { ok: false, error: missing }
  }
  const metadata = (isObject(parsed.metadata) ? parsed.metadata : {}) as FlagMetadata
  const core = new FlagdCore(frozenStorage(flags, metadata), logger)
  const definitions = parsed as unknown as FlagdDefinitions
  return { ok: true, core, count: flags.size, definitions, version: versionOf(text) }
}

/** A content hash of definitions text: 16 base64url characters of its SHA-256. */
export function versionOf(text: string): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, 16)
}

// The compiled slices put together. Nothing ever calls setConfigurations on it: a new edit
// builds a new storage, so a request in flight keeps the generation it started with.
function frozenStorage(flags: Map<string, FeatureFlag>, metadata: FlagMetadata): NonNullable<ConstructorParameters<typeof FlagdCore>[0]> {
  return {
    getFlag: (key) => flags.get(key),
    getFlags: () => flags,
    getFlagSetMetadata: () => metadata,
    setConfigurations() {
      throw new Error('[holdfast-server] compiled definitions are immutable')
    },
  }
}

// flagd-core leaves `{"$ref": "name"}` in place when no evaluator has that name, and its schema
// accepts a reference anywhere a rule may stand: the flag would only fail at evaluation time.
function missingEvaluator(flags: Record<string, unknown>, evaluators: Record<string, unknown>): string | undefined {
  const find = (node: unknown, depth: number): string | undefined => {
    if (depth > 256 || node === null || typeof node !== 'object') return undefined
    if (Array.isArray(node)) {
      for (const item of node) {
        const found = find(item, depth + 1)
        if (found !== undefined) return found
      }
      return undefined
    }
    const record = node as Record<string, unknown>
    if (typeof record.$ref === 'string' && !Object.prototype.hasOwnProperty.call(evaluators, record.$ref)) return record.$ref
    for (const value of Object.values(record)) {
      const found = find(value, depth + 1)
      if (found !== undefined) return found
    }
    return undefined
  }
  for (const [key, flag] of Object.entries(flags)) {
    const name = find((flag as Record<string, unknown>).targeting, 0)
    if (name !== undefined) return `flag "${key}": $ref "${name}" names no entry of $evaluators`
  }
  for (const [key, rule] of Object.entries(evaluators)) {
    const name = find(rule, 0)
    if (name !== undefined) return `$evaluators "${key}": $ref "${name}" names no entry of $evaluators`
  }
  return undefined
}

function describeZodIssue(issue: { path: PropertyKey[]; message: string } | undefined): string {
  if (!issue) return 'invalid flag definitions'
  return `/${issue.path.map(String).join('/')}: ${issue.message}`
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
