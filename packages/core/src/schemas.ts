// Every schema of the boundaries — network responses, bootstrap input, what is read back from
// storage — lives here. They are tolerant on purpose: the OFREP spec's schema contradicts its own
// examples, and a vendor once took its API down for clients that omitted an empty optional
// field. So optional fields may be missing, unknown reasons and error codes pass through, a field
// of the wrong type is dropped rather than failing the entry, and an entry that cannot be read at
// all (no string `key`) is skipped rather than failing the response.
import * as z from 'zod/mini'
import type { Bootstrap, EvaluationContext, FlagEntry, FlagMetadata, HoldfastEvent, JsonValue } from './types'

const bulkResponseSchema = z.looseObject({ flags: z.array(z.unknown()) })

const contextSchema = z.looseObject({ targetingKey: z.string() })

const bootstrapSchema = z.looseObject({ context: contextSchema, flags: z.array(z.unknown()) })

/** Version of the persisted cache entry; an entry of another version is discarded. */
export const CACHE_VERSION = 1

const cacheEntrySchema = z.looseObject({ v: z.number(), flags: z.array(z.unknown()), savedAt: z.number() })

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

/**
 * Reads one flag entry; undefined when it cannot be read (no string key). Entries are read with
 * plain type checks rather than a zod schema: a 10,000-flag response is 10,000 entries, and a
 * per-entry safeParse made applying it five times slower than JSON.parse. The shapes around them
 * (the response, a bootstrap, a cache record) are zod schemas.
 */
export function parseEntry(raw: unknown): FlagEntry | undefined {
  if (raw === null || typeof raw !== 'object') return undefined
  const d = raw as Record<string, unknown>
  if (typeof d.key !== 'string') return undefined
  const entry: FlagEntry = { key: d.key }
  // `null` and absent both mean "use the caller's default"; anything not JSON is treated alike.
  if (d.value !== undefined && d.value !== null && isJsonValue(d.value)) entry.value = d.value
  if (typeof d.reason === 'string') entry.reason = d.reason
  if (typeof d.variant === 'string') entry.variant = d.variant
  if (isMetadata(d.metadata)) entry.metadata = d.metadata
  if (typeof d.errorCode === 'string') entry.errorCode = d.errorCode
  if (typeof d.errorDetails === 'string') entry.errorDetails = d.errorDetails
  if (typeof d.updatedAt === 'number') entry.updatedAt = d.updatedAt
  return entry
}

function isMetadata(value: unknown): value is FlagMetadata {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false
  for (const v of Object.values(value)) if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') return false
  return true
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
  const { etag, fetchedAt } = parsed.data
  const bootstrap: Bootstrap = {
    context: parsed.data.context as EvaluationContext,
    flags: entries,
    // A snapshot without a time is treated as the oldest possible: any cached value beats it.
    fetchedAt: typeof fetchedAt === 'number' ? fetchedAt : 0,
  }
  if (typeof etag === 'string') bootstrap.etag = etag
  return { bootstrap, skipped }
}

/** Reads a persisted cache entry; undefined when corrupt, foreign or of another version. */
export function parseCacheRecord(input: unknown): CacheRecord | undefined {
  const parsed = cacheEntrySchema.safeParse(input)
  if (!parsed.success || parsed.data.v !== CACHE_VERSION) return undefined
  const { entries } = parseEntries(parsed.data.flags)
  const { etag, contextHash } = parsed.data
  const record: CacheRecord = { v: CACHE_VERSION, flags: entries, savedAt: parsed.data.savedAt }
  if (typeof etag === 'string') record.etag = etag
  if (typeof contextHash === 'string') record.contextHash = contextHash
  return record
}

/** Whether `input` is a usable evaluation context. */
export function isContext(input: unknown): input is EvaluationContext {
  return contextSchema.safeParse(input).success
}

// An event read back from storage: only what delivery needs is checked; the rest is sent as it was
// logged (the receiver validates its own input).
const storedEventSchema = z.looseObject({ id: z.string(), type: z.string(), name: z.string(), time: z.number() })

/** Whether a value read back from the event store is a sendable event. */
export function isStoredEvent(value: unknown): value is HoldfastEvent {
  const parsed = storedEventSchema.safeParse(value)
  return parsed.success && (parsed.data.type === 'exposure' || parsed.data.type === 'custom')
}
