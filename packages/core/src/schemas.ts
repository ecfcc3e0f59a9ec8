// Every check of the boundaries — network responses, bootstrap input, what is read back from
// storage — lives here. They are tolerant on purpose: the OFREP spec's schema contradicts its own
// examples, and a vendor once took its API down for clients that omitted an empty optional
// field. So optional fields may be missing, unknown reasons and error codes pass through, a field
// of the wrong type is dropped rather than failing the entry, and an entry that cannot be read at
// all (no string `key`) is skipped rather than failing the response.
//
// They are plain type checks, not zod/mini schemas. zod/mini was the first choice and the browser
// bundle could not afford it: its smallest object schema is 4.1 KB min+gzip, 40% of the 10.5 KB
// budget for client and React bindings together, spent on four outer shapes that take a dozen
// lines here (measured 2026-11-21; see README, "Size"). Each check below names the shape it
// accepts; a field it does not name is let through untouched.
import type { Bootstrap, EvaluationContext, FlagEntry, FlagMetadata, HoldfastEvent, JsonValue } from './types'

/** A JSON object: not null, not an array. Extra fields are allowed everywhere. */
function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

const isNumber = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value)

/** Version of the persisted cache entry; an entry of another version is discarded. */
export const CACHE_VERSION = 1

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
  if (!isRecord(value)) return false
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

/** Reads an OFREP bulk response body `{ flags: [...] }`; undefined when it is not that shape. */
export function parseBulkResponse(body: unknown): { entries: FlagEntry[]; skipped: number } | undefined {
  return isRecord(body) && Array.isArray(body.flags) ? parseEntries(body.flags) : undefined
}

/** Reads a bootstrap or fallback snapshot `{ context, flags: [...], etag?, fetchedAt? }`; undefined when malformed. */
export function parseBootstrap(input: unknown): { bootstrap: Bootstrap; skipped: number } | undefined {
  if (!isRecord(input) || !isContext(input.context) || !Array.isArray(input.flags)) return undefined
  const { entries, skipped } = parseEntries(input.flags)
  const { etag, fetchedAt } = input
  const bootstrap: Bootstrap = {
    context: input.context,
    flags: entries,
    // A snapshot without a time is treated as the oldest possible: any cached value beats it.
    fetchedAt: typeof fetchedAt === 'number' ? fetchedAt : 0,
  }
  if (typeof etag === 'string') bootstrap.etag = etag
  return { bootstrap, skipped }
}

/** Reads a persisted cache entry `{ v, flags: [...], savedAt, etag?, contextHash? }`; undefined when corrupt, foreign or of another version. */
export function parseCacheRecord(input: unknown): CacheRecord | undefined {
  if (!isRecord(input) || input.v !== CACHE_VERSION || !Array.isArray(input.flags) || !isNumber(input.savedAt)) return undefined
  const { entries } = parseEntries(input.flags)
  const { etag, contextHash } = input
  const record: CacheRecord = { v: CACHE_VERSION, flags: entries, savedAt: input.savedAt }
  if (typeof etag === 'string') record.etag = etag
  if (typeof contextHash === 'string') record.contextHash = contextHash
  return record
}

/** Whether `input` is a usable evaluation context: an object with a string `targetingKey`. */
export function isContext(input: unknown): input is EvaluationContext {
  return isRecord(input) && typeof input.targetingKey === 'string'
}

/**
 * Whether a value read back from the event store is a sendable event: `{ id, type, name, time }`
 * with a known type. Only what delivery needs is checked; the rest is sent as it was logged (the
 * receiver validates its own input).
 */
export function isStoredEvent(value: unknown): value is HoldfastEvent {
  return (
    isRecord(value) &&
    typeof value.id === 'string' &&
    (value.type === 'exposure' || value.type === 'custom') &&
    typeof value.name === 'string' &&
    isNumber(value.time)
  )
}
