import { z } from 'zod'

// The wire formats of Holdfast, written once, as the readable spec (CONTRACT §2.1, §3, OFREP
// 0.3.0). The server validates what it accepts with them; the browser client keeps small
// hand-written checks (bytes matter there) and test/server/schemas.test.ts proves on generated
// documents that both accept and refuse the same ones.
//
// Tolerance is deliberate: every optional field may be omitted, unknown fields pass through, and
// unknown reasons and error codes are strings like any other. A schema that refuses an omitted
// optional field once took a vendor's API down for every client that omitted it.

/** Caps on what one evaluation request may hold. Every field has a default ({@link DEFAULT_REQUEST_LIMITS}). */
export interface RequestLimits {
  /** Largest OFREP request body, in bytes. Default 65,536 (64 KiB); bigger bodies up to 1 MiB get 400 `INVALID_CONTEXT`, over 1 MiB 413. */
  maxBodyBytes: number
  /** Most keys and array items in a context, counted at every depth. Default 256. */
  maxAttributes: number
  /** Deepest nesting of objects and arrays in a context. Default 8. */
  maxDepth: number
  /** Longest string (attribute value or key) in a context, in UTF-16 units. Default 4,096. */
  maxStringLength: number
  /** Longest `targetingKey`. Default 1,024. */
  maxTargetingKeyLength: number
}

/**
 * Default {@link RequestLimits}: far above any real context (a few dozen attributes), far below
 * what costs real CPU (flagd-core copies the context once per flag: 40,000 attributes against
 * 1,000 flags once blocked the event loop for 35 s).
 */
export const DEFAULT_REQUEST_LIMITS: RequestLimits = Object.freeze({
  maxBodyBytes: 65_536,
  maxAttributes: 256,
  maxDepth: 8,
  maxStringLength: 4_096,
  maxTargetingKeyLength: 1_024,
})

/**
 * Keys refused anywhere in a context. JSON.parse keeps `"__proto__"` as an own key, and the first
 * `Object.assign` or spread of the context (flagd-core makes one per flag) turns it into the
 * prototype: `{"__proto__": {"plan": "pro"}}` then satisfied a rule on `plan`.
 */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype'])

/** A request-level OFREP error code (the body of a 400). */
export type RequestErrorCode = 'PARSE_ERROR' | 'INVALID_CONTEXT' | 'TARGETING_KEY_MISSING'

/**
 * What is wrong with a context, or undefined. One linear walk that stops at the first problem,
 * so a hostile context costs no more than reading it: the attribute count is checked as keys are
 * met, not after the whole tree is visited.
 */
export function contextProblem(value: unknown, limits: RequestLimits = DEFAULT_REQUEST_LIMITS): { code: RequestErrorCode; message: string } | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { code: 'INVALID_CONTEXT', message: '"context" must be an object' }
  const { targetingKey } = value as Record<string, unknown>
  if (targetingKey === undefined || targetingKey === null || targetingKey === '') return { code: 'TARGETING_KEY_MISSING', message: 'the context has no targetingKey' }
  if (typeof targetingKey !== 'string') return { code: 'INVALID_CONTEXT', message: 'targetingKey must be a string' }
  if (targetingKey.length > limits.maxTargetingKeyLength) return { code: 'INVALID_CONTEXT', message: `targetingKey is longer than ${limits.maxTargetingKeyLength} characters` }
  let attributes = 0
  const walk = (node: unknown, depth: number, path: string): string | undefined => {
    if (typeof node === 'string') return node.length > limits.maxStringLength ? `${path} is longer than ${limits.maxStringLength} characters` : undefined
    if (typeof node !== 'object' || node === null) return undefined
    if (depth > limits.maxDepth) return `${path} is nested deeper than ${limits.maxDepth} levels`
    if (Array.isArray(node)) {
      attributes += node.length
      if (attributes > limits.maxAttributes) return `the context has more than ${limits.maxAttributes} attributes`
      for (let i = 0; i < node.length; i++) {
        const problem = walk(node[i], depth + 1, `${path}[${i}]`)
        if (problem) return problem
      }
      return undefined
    }
    for (const key in node) {
      if (++attributes > limits.maxAttributes) return `the context has more than ${limits.maxAttributes} attributes`
      if (FORBIDDEN_KEYS.has(key)) return `the key "${key}" is not allowed in a context`
      if (key.length > limits.maxStringLength) return `a key in ${path} is longer than ${limits.maxStringLength} characters`
      const problem = walk((node as Record<string, unknown>)[key], depth + 1, `${path}.${key}`)
      if (problem) return problem
    }
    return undefined
  }
  const problem = walk(value, 1, 'context')
  return problem ? { code: 'INVALID_CONTEXT', message: problem } : undefined
}

/**
 * An evaluation context within `limits`: `{ targetingKey: string, ...JSON attributes }`. The caps
 * and forbidden keys are checked on the raw value first (zod's own object parsing would silently
 * drop a `__proto__` key rather than refuse it). Issues carry the OFREP error code in `params.errorCode`.
 */
export function evaluationContextSchema(limits: RequestLimits = DEFAULT_REQUEST_LIMITS) {
  return z
    .unknown()
    .superRefine((value, ctx) => {
      const problem = contextProblem(value, limits)
      if (problem) ctx.addIssue({ code: 'custom', message: problem.message, params: { errorCode: problem.code }, abort: true })
    })
    .pipe(z.object({ targetingKey: z.string().min(1) }).catchall(z.json()))
}

/** The body of `POST /ofrep/v1/evaluate/flags` (and `/flags/{key}`): `{ context }`; other fields are ignored. */
export function evaluationRequestSchema(limits: RequestLimits = DEFAULT_REQUEST_LIMITS) {
  return z.object({ context: evaluationContextSchema(limits) }).loose()
}

/** A JSON value. */
export const jsonValueSchema = z.json()

/** Flag or flag-set metadata on the wire: a flat object of strings, numbers and booleans. */
export const metadataSchema = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]))

/**
 * A successful OFREP evaluation. `value` absent or null means "use the caller's default". Every
 * optional field may also be `null` (absent) or empty, as a server without `omitempty` (Go, Java)
 * writes it: `{"key":"f","value":true,"reason":"STATIC","variant":"","errorCode":"","metadata":null}`
 * is a success.
 */
export const ofrepSuccessSchema = z
  .object({
    key: z.string(),
    value: jsonValueSchema.optional(),
    reason: z.string().nullish(),
    variant: z.string().nullish(),
    metadata: metadataSchema.nullish(),
  })
  .loose()

/** A failed OFREP evaluation (`FLAG_NOT_FOUND`, `PARSE_ERROR`, `GENERAL`, or any code). */
export const ofrepFailureSchema = z
  .object({
    key: z.string(),
    errorCode: z.string(),
    errorDetails: z.string().nullish(),
    metadata: metadataSchema.nullish(),
  })
  .loose()

/**
 * One entry of a bulk answer or a bootstrap, as Holdfast reads it: a string `key` and any of the
 * optional fields. `updatedAt` (epoch ms) appears on entries a client persisted or snapshotted.
 * `errorCode: ""` (or null) beside a value is a success; `""` with no value (absent or null) is read
 * as `PARSE_ERROR`, so a held value is kept rather than replaced by nothing.
 */
export const flagEntrySchema = ofrepSuccessSchema.extend({
  errorCode: z.string().nullish(),
  errorDetails: z.string().nullish(),
  updatedAt: z.number().nullish(),
})

/**
 * A 200 OFREP bulk answer: `{ flags: [entry...], metadata? }`. Readers skip an entry without a
 * string `key` instead of refusing the answer (one unreadable entry is not fatal), so the envelope only asks for an
 * array; {@link flagEntrySchema} describes a readable entry.
 */
export const ofrepBulkResponseSchema = z.object({ flags: z.array(z.unknown()), metadata: z.unknown().optional() }).loose()

/** The envelope of a bootstrap that a reader accepts: a context with a string `targetingKey` and a `flags` array. */
export const bootstrapEnvelopeSchema = z
  .object({ context: z.object({ targetingKey: z.string() }).loose(), flags: z.array(z.unknown()) })
  .loose()

/**
 * A `Bootstrap` (as `@holdfast/core` defines it): one user's flags in a form that can be serialised into HTML or a
 * build, as `fetchBootstrap` returns it and `holdfast-server snapshot --upstream` writes it.
 * `fetchedAt` absent means "the oldest possible" (any cached value beats it). Published as JSON
 * Schema: `@holdfast/server/schema/bootstrap.schema.json`.
 */
export const bootstrapSchema = z
  .object({
    context: z.object({ targetingKey: z.string() }).catchall(jsonValueSchema),
    flags: z.array(flagEntrySchema),
    etag: z.string().optional(),
    fetchedAt: z.number().optional(),
    stale: z.boolean().optional(),
  })
  .loose()
  .meta({ title: 'Holdfast Bootstrap', description: 'One user\'s flag values as a snapshot: server-rendered bootstrap or build-time fallback.' })
