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
// accepts; a field it does not name is let through untouched. The one check only event delivery
// needs (a stored event) lives with it, in events/delivery/storeReader.ts, so it loads on demand.
import type { Bootstrap, EvaluationContext, FlagEntry, FlagMetadata, JsonValue } from '../types'

/** A JSON object: not null, not an array. Extra fields are allowed everywhere. */
function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

// Number.isFinite does not coerce: it is false for anything but a finite number.
const isNumber = (value: unknown): value is number => Number.isFinite(value)

/** Version of the persisted cache entry; an entry of another version is discarded. */
export const CACHE_VERSION = 1

/** A cache entry as persisted: no raw targeting key or attributes, only their hash. */
export interface CacheRecord {
  v: typeof CACHE_VERSION
  flags: FlagEntry[]
  etag?: string
  /** The keys of the snapshot `etag` names (a 304 confirms only those). Default: the keys of `flags`. */
  etagKeys?: string[]
  contextHash?: string
  savedAt: number
  /** When an answer last vouched for these values, on the server's clock (flags/merge.ts `heldAt`). */
  heldAt?: number
}

const INVALID: unknown = Symbol()

/**
 * A deep copy of app-supplied JSON data in one pass, or undefined when it is not JSON (a class
 * instance, a BigInt, a non-finite number, a cycle) or reading it throws (a getter or Proxy that
 * throws, a revoked Proxy). Used for `bootstrap` and `fallback` values, so later mutation by the
 * app changes nothing the client holds, and for values read back from storage. Depth is bounded
 * at 5,000 levels (a cycle ends there).
 */
export function copyJson(input: unknown): JsonValue | undefined {
  try {
    const out = copy(input, 0)
    return out === INVALID ? undefined : (out as JsonValue)
  } catch {
    return undefined
  }
}

// Arrays and objects are copied by a spread, then their items replaced by their copies: V8 makes a
// spread as small as its source, where one built item by item kept room to grow (an object from
// `{}` four properties, 56 B for `{ color, limit }` against JSON.parse's 40; an array pushed to,
// up to half again). The spread also keeps an own `__proto__` (as JSON.parse makes it) as a key,
// where an assignment sets the prototype; items are read once, from the copy.
function copy(v: unknown, depth: number): unknown {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v
  if (typeof v === 'number') return Number.isFinite(v) ? v : INVALID
  if (typeof v !== 'object' || depth > 5000) return INVALID
  if (Array.isArray(v)) {
    const out: unknown[] = [...v]
    for (let i = 0; i < out.length; i++) if ((out[i] = copy(out[i], depth + 1)) === INVALID) return INVALID
    return out
  }
  const proto = Object.getPrototypeOf(v)
  if (proto !== Object.prototype && proto !== null) return INVALID
  const out: Record<string | symbol, unknown> = { ...v }
  // The spread copies Symbol-keyed entries too, uncopied: JSON has none (JSON.stringify skips them).
  for (const s of Object.getOwnPropertySymbols(out)) delete out[s]
  for (const key of Object.keys(out)) {
    const item = out[key]
    // Absent, as JSON.stringify has it (the type of a JSON import marks other entries' keys `?: undefined`).
    if (item === undefined) delete out[key]
    else if ((out[key] = copy(item, depth + 1)) === INVALID) return INVALID
  }
  return out
}

/** Deep-freezes JSON data (iteratively), so a value handed to the app cannot be changed under the cache or later reads. */
export function freezeJson<T>(value: T): T {
  // A primitive counts as frozen (ES2015), so the evaluation path's common case ends here at once.
  if (Object.isFrozen(value)) return value
  // Primitives and frozen objects are passed over (a value frozen once is frozen all through).
  const stack: unknown[] = [value]
  while (stack.length > 0) {
    const v = stack.pop()
    if (v === null || typeof v !== 'object' || Object.isFrozen(v)) continue
    Object.freeze(v)
    for (const key in v) stack.push((v as Record<string, unknown>)[key])
  }
  return value
}

/** How far ahead of this clock a time may be and still be read as "now-ish" (clock skew): a minute. */
export const CLOCK_SKEW_MS = 60_000

/**
 * A timestamp the client may trust for precedence: finite, positive, and not in the future (past
 * a minute of clock skew). Anything else — `NaN`, `Infinity`, a time written while a clock ran
 * hours ahead — is 0, the oldest possible, so it never wins over fresher data.
 */
export function trustedTime(value: unknown, now: number): number {
  return isNumber(value) && value > 0 && value <= now + CLOCK_SKEW_MS ? value : 0
}

/**
 * Reads one flag entry; undefined when it cannot be read (no string key). Read back from storage
 * (`now`: this device's clock), an `updatedAt` not positive or later than now is left out (see
 * parseCacheRecord); from the wire, any finite one is read, as the server's zod schema reads it.
 */
export function parseEntry(raw: unknown, now?: number): FlagEntry | undefined {
  if (raw === null || typeof raw !== 'object') return undefined
  const d = raw as Record<string, unknown>
  if (typeof d.key !== 'string') return undefined
  const entry: FlagEntry = { key: d.key }
  // `null` and absent both mean "use the caller's default". A value no JSON can carry is a per-flag
  // PARSE_ERROR (§4: the last known good value stays), never the caller's default in disguise:
  // `1e400` parses as Infinity, which the cache, snapshot() and an SSR bootstrap would turn into
  // null or nothing. Copied (storage, app input): the app changing its object later changes nothing held.
  if (d.value !== undefined && d.value !== null) {
    const value = copyJson(d.value)
    if (value === undefined) entry.errorCode = 'PARSE_ERROR'
    else entry.value = value
  }
  if (typeof d.reason === 'string') entry.reason = d.reason
  if (typeof d.variant === 'string') entry.variant = d.variant
  if (isRecord(d.metadata)) entry.metadata = readMetadata(d.metadata)
  // An errorCode of another type (a vendor's numeric 404) still says the flag failed: dropped as a
  // field of the wrong type, it left `{ key }`, a success with no value, and the held value was lost.
  // `""` is how a server without `omitempty` (Go, Java) writes "no error": read as a failure, no
  // flag of such a server ever updated. With no value it cannot be told from a failure whose
  // code was emptied, so it keeps the held value (PARSE_ERROR) rather than serve the caller's default.
  const code = d.errorCode
  if (code === '' ? !('value' in entry) : code != null) entry.errorCode = (typeof code == 'string' && code) || 'PARSE_ERROR'
  if (typeof d.errorDetails === 'string') entry.errorDetails = d.errorDetails
  // `now` given (even 0, where a fake clock starts) is a read from storage: the trust check applies.
  if (now !== undefined ? trustedTime(d.updatedAt, now) : isNumber(d.updatedAt)) entry.updatedAt = d.updatedAt as number
  return entry
}

// A copy of the entries OFREP allows (string, finite number, boolean); any other entry is left out
// alone, so one nested field a vendor adds does not cost the flag all its metadata. Copied by a
// spread, which V8 makes as small as the parsed object (one built key by key from `{}` kept room
// for four properties, 24 B more for each flag held: 3.05 MiB for 10,000 flags, not 2.7), and which
// keeps an own `__proto__` (as JSON.parse makes it) as an entry like any other, where an assignment
// set the copy's prototype. The entries are then checked on the copy (a getter is read once). A
// symbol key a bootstrap's metadata may carry stays as given: nothing reads, caches or sends it.
function readMetadata(value: Record<string, unknown>): FlagMetadata {
  const all = { ...value }
  for (const key of Object.keys(all)) {
    const v = all[key]
    if (!(typeof v === 'string' || typeof v === 'boolean' || isNumber(v))) delete all[key]
  }
  return all as FlagMetadata
}

function parseEntries(raw: unknown[], now?: number): { entries: FlagEntry[]; skipped: number } {
  const entries: FlagEntry[] = []
  for (const item of raw) {
    const entry = parseEntry(item, now)
    if (entry) entries.push(entry)
  }
  return { entries, skipped: raw.length - entries.length }
}

/**
 * What a Holdfast relay says about the values it answered with (flag-set
 * `metadata.holdfast = { source, fetchedAt, stale }`). Read tolerantly: a field of the wrong type
 * is left out.
 */
export interface UpstreamInfo {
  source?: string
  /** Epoch ms when the relay got these values from its source. */
  fetchedAt?: number
  /** The relay's source is failing: these are its last known good values. */
  stale?: boolean
}

/** Reads an OFREP bulk response body `{ flags: [...], metadata? }`; undefined when it is not that shape. */
export function parseBulkResponse(body: unknown): { entries: FlagEntry[]; skipped: number; upstream?: UpstreamInfo } | undefined {
  if (!isRecord(body) || !Array.isArray(body.flags)) return undefined
  // Values are checked and copied even fresh from JSON.parse: a number out of the double range parses as Infinity.
  const result: { entries: FlagEntry[]; skipped: number; upstream?: UpstreamInfo } = parseEntries(body.flags)
  const meta = isRecord(body.metadata) ? body.metadata.holdfast : undefined
  if (isRecord(meta)) {
    const upstream: UpstreamInfo = {}
    if (typeof meta.source === 'string') upstream.source = meta.source
    if (isNumber(meta.fetchedAt) && meta.fetchedAt > 0) upstream.fetchedAt = meta.fetchedAt
    if (typeof meta.stale === 'boolean') upstream.stale = meta.stale
    result.upstream = upstream
  }
  return result
}

/**
 * Reads a bootstrap or fallback snapshot `{ context, flags: [...], etag?, fetchedAt?, stale? }` into a
 * frozen copy the app can no longer change; undefined when malformed, or when reading it throws
 * (getters, a Proxy, a revoked Proxy, a cycle, a BigInt).
 */
export function parseBootstrap(raw: unknown): { bootstrap: Bootstrap; skipped: number } | undefined {
  try {
    return readBootstrap(raw)
  } catch {
    return undefined
  }
}

function readBootstrap(input: unknown): { bootstrap: Bootstrap; skipped: number } | undefined {
  if (!isRecord(input)) return undefined
  const context = copyJson(input.context)
  if (!isContext(context) || !Array.isArray(input.flags)) return undefined
  const { entries, skipped } = parseEntries(input.flags)
  const { etag, fetchedAt } = input
  const bootstrap: Bootstrap = {
    context,
    flags: entries,
    // A snapshot without a usable time is treated as the oldest possible: any cached value beats it.
    fetchedAt: isNumber(fetchedAt) ? fetchedAt : 0,
  }
  if (typeof etag === 'string') bootstrap.etag = etag
  if (input.stale === true) bootstrap.stale = true
  // A value JSON cannot carry (NaN, a Date, a cycle) makes a PARSE_ERROR entry, which a snapshot
  // does not hold: counted with the unreadable ones, so the app is told (its flag said
  // FLAG_NOT_FOUND and nothing was logged). Counted as values given but not held: a server's own
  // per-flag PARSE_ERROR (no value) in a bootstrap taken from a partial answer was read fine.
  const given = input.flags.filter((f) => typeof f?.key == 'string' && f.value != null).length
  return { bootstrap, skipped: skipped + given - entries.filter((e) => 'value' in e).length }
}

/**
 * Reads a persisted cache entry `{ v, flags: [...], savedAt, etag?, contextHash? }`; undefined when
 * corrupt, foreign or of another version. A flag's `updatedAt` this device's clock (`now`) cannot
 * have written — later than now (an older SDK stored a bootstrap's, up to a day ahead), negative —
 * is unknown (the entry's save time stands in): read as given, it made every stale answer "older"
 * for that flag, and its value was kept over them for good.
 */
export function parseCacheRecord(input: unknown, now: number): CacheRecord | undefined {
  if (!isRecord(input) || input.v !== CACHE_VERSION || !Array.isArray(input.flags) || !isNumber(input.savedAt)) return undefined
  const { entries } = parseEntries(input.flags, now)
  const { etag, contextHash } = input
  const record: CacheRecord = { v: CACHE_VERSION, flags: entries, savedAt: input.savedAt, heldAt: input.heldAt as number }
  if (typeof etag === 'string') record.etag = etag
  if (Array.isArray(input.etagKeys)) record.etagKeys = input.etagKeys.filter((k): k is string => typeof k === 'string')
  if (typeof contextHash === 'string') record.contextHash = contextHash
  return record
}

/**
 * The client's own deep-frozen copy of a context the app passed (a Date stays a Date): the app may
 * go on changing its object, and what `getContext()` or `snapshot()` hands out cannot be changed,
 * so what is sent always matches the hash that keys the ETag and the cache. A context
 * structuredClone refuses (a Proxy: a Vue `reactive` or MobX user; a function in it) is copied
 * as JSON, as it is sent: kept live, an app changing it to the next user while a request was out
 * had the answer cached under that next user's targetingKey. Only a context JSON cannot carry
 * either (a BigInt, a cycle) is used as given; it is refused as INVALID_CONTEXT anyway.
 */
export function ownContext(context: EvaluationContext): EvaluationContext {
  try {
    return freezeJson(structuredClone(context))
  } catch {
    try {
      return freezeJson(JSON.parse(JSON.stringify(context)) as EvaluationContext)
    } catch {
      return context
    }
  }
}

/** Whether `input` is a usable evaluation context: an object with a string `targetingKey`. */
export function isContext(input: unknown): input is EvaluationContext {
  // A key that cannot be read (a revoked Proxy, a throwing getter) is no key: refused as such, never
  // a throw that setContext swallowed, switching nothing and saying nothing.
  try {
    return isRecord(input) && typeof input.targetingKey === 'string'
  } catch {
    return false
  }
}
