// Every schema of the boundaries — network responses, bootstrap input, what is read back from
// storage — lives here. They are tolerant on purpose: the OFREP spec's schema contradicts its own
// examples, and a vendor once took its API down for clients that omitted an empty optional
// field. So optional fields may be missing, unknown reasons and error codes pass through, a field
// of the wrong type is dropped rather than failing the entry, and an entry that cannot be read at
// all (no string `key`) is skipped rather than failing the response.
import * as z from 'zod/mini'
import type { Bootstrap, EvaluationContext, FlagEntry, HoldfastEvent, JsonValue } from './types'

/** Optional field that is dropped, not fatal, when it has the wrong type. */
const lenient = <T extends z.core.SomeType>(schema: T) => z.catch(z.optional(schema), undefined)

const metadataSchema = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]))

const entrySchema = z.object({
  key: z.string(),
  value: z.optional(z.unknown()),
  reason: lenient(z.string()),
  variant: lenient(z.string()),
  metadata: lenient(metadataSchema),
  errorCode: lenient(z.string()),
  errorDetails: lenient(z.string()),
  updatedAt: lenient(z.number()),
})

const bulkResponseSchema = z.looseObject({ flags: z.array(z.unknown()) })

const contextSchema = z.looseObject({ targetingKey: z.string() })

const bootstrapSchema = z.looseObject({
  context: contextSchema,
  flags: z.array(z.unknown()),
  etag: lenient(z.string()),
  fetchedAt: lenient(z.number()),
})

/** Version of the persisted cache entry; an entry of another version is discarded. */
export const CACHE_VERSION = 1

const cacheEntrySchema = z.object({
  v: z.literal(CACHE_VERSION),
  flags: z.array(z.unknown()),
  etag: lenient(z.string()),
  contextHash: lenient(z.string()),
  savedAt: z.number(),
})

/** A cache entry as persisted: no raw targeting key or attributes, only their hash. */
export interface CacheRecord {
  v: typeof CACHE_VERSION
  flags: FlagEntry[]
  etag?: string
  contextHash?: string
  savedAt: number
}

function isJsonValue(value: unknown, depth = 0): value is JsonValue {
  if (depth > 64) return false
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true
  if (typeof value === 'number') return Number.isFinite(value)
  if (Array.isArray(value)) return value.every((v) => isJsonValue(v, depth + 1))
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype)
    return Object.values(value as object).every((v) => isJsonValue(v, depth + 1))
  return false
}

/** Reads one flag entry; undefined when it cannot be read (no string key). */
export function parseEntry(raw: unknown): FlagEntry | undefined {
  const parsed = entrySchema.safeParse(raw)
  if (!parsed.success) return undefined
  const d = parsed.data
  const entry: FlagEntry = { key: d.key }
  // `null` and absent both mean "use the caller's default"; anything not JSON is treated alike.
  if (d.value !== undefined && d.value !== null && isJsonValue(d.value)) entry.value = d.value
  if (d.reason !== undefined) entry.reason = d.reason
  if (d.variant !== undefined) entry.variant = d.variant
  if (d.metadata !== undefined) entry.metadata = d.metadata
  if (d.errorCode !== undefined) entry.errorCode = d.errorCode
  if (d.errorDetails !== undefined) entry.errorDetails = d.errorDetails
  if (d.updatedAt !== undefined) entry.updatedAt = d.updatedAt
  return entry
}

function parseEntries(raw: unknown[]): { entries: FlagEntry[]; skipped: number } {
  const entries: FlagEntry[] = []
  for (const item of raw) {
    const entry = parseEntry(item)
    if (entry) entries.push(entry)
  }
  return { entries, skipped: raw.length - entries.length }
}

/** Reads an OFREP bulk response body; undefined when it is not an object with a `flags` array. */
export function parseBulkResponse(body: unknown): { entries: FlagEntry[]; skipped: number } | undefined {
  const parsed = bulkResponseSchema.safeParse(body)
  return parsed.success ? parseEntries(parsed.data.flags) : undefined
}

/** Reads a bootstrap or fallback snapshot; undefined when malformed. */
export function parseBootstrap(input: unknown): { bootstrap: Bootstrap; skipped: number } | undefined {
  const parsed = bootstrapSchema.safeParse(input)
  if (!parsed.success) return undefined
  const { entries, skipped } = parseEntries(parsed.data.flags)
  const bootstrap: Bootstrap = {
    context: parsed.data.context as EvaluationContext,
    flags: entries,
    // A snapshot without a time is treated as the oldest possible: any cached value beats it.
    fetchedAt: parsed.data.fetchedAt ?? 0,
  }
  if (parsed.data.etag !== undefined) bootstrap.etag = parsed.data.etag
  return { bootstrap, skipped }
}

/** Reads a persisted cache entry; undefined when corrupt, foreign or of another version. */
export function parseCacheRecord(input: unknown): CacheRecord | undefined {
  const parsed = cacheEntrySchema.safeParse(input)
  if (!parsed.success) return undefined
  const { entries } = parseEntries(parsed.data.flags)
  const record: CacheRecord = { v: CACHE_VERSION, flags: entries, savedAt: parsed.data.savedAt }
  if (parsed.data.etag !== undefined) record.etag = parsed.data.etag
  if (parsed.data.contextHash !== undefined) record.contextHash = parsed.data.contextHash
  return record
}

/** Whether `input` is a usable evaluation context. */
export function isContext(input: unknown): input is EvaluationContext {
  return contextSchema.safeParse(input).success
}

// An event read back from storage: only what delivery needs is checked; the rest is sent as it was
// logged (the receiver validates its own input).
const storedEventSchema = z.looseObject({
  id: z.string(),
  type: z.enum(['exposure', 'custom']),
  name: z.string(),
  time: z.number(),
})

/** Whether a value read back from the event store is a sendable event. */
export function isStoredEvent(value: unknown): value is HoldfastEvent {
  return storedEventSchema.safeParse(value).success
}
