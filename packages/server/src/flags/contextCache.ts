// Proxy mode's memory: the last good answer per (context, forwarded credentials), least recently
// used out first. Keys are hashes, so neither the raw context nor a forwarded token is ever
// persisted, and one credential's answers can never be looked up with another's.
import { createHash } from 'node:crypto'
import { stableStringify, type FlagMap, type HeldFlag } from '@holdfast/core'
import type { EvaluationContext } from '@openfeature/core'
import { createLru } from '../lru'
import { toEntries } from './heldEntries'
import type { ContextRecord } from './records'

/** Default bound on the contexts held in proxy mode: 10,000. */
export const DEFAULT_MAX_CONTEXTS = 10_000

/** Bound on the FLAG_NOT_FOUND keys held per context ({@link HeldContext.notFound}): 1,000. */
export const MAX_NOT_FOUND = 1000

/** Default bound on the heap bytes of the answers held in proxy mode (see {@link heldBytes}): 64 MiB. */
export const DEFAULT_MAX_CONTEXT_BYTES = 64 * 1024 * 1024

/** One context's last good answer. */
export interface HeldContext {
  flags: FlagMap
  /** Epoch ms when the upstream last vouched for these flags (for a relay upstream: its own `fetchedAt`). */
  fetchedAt: number
  etag?: string
  metadata?: Record<string, string | number | boolean>
  /** `upstream` once this process got an answer; `data-dir` when only read back from disk. */
  source: 'upstream' | 'data-dir'
  /** The upstream is itself a relay and said its answer was stale. */
  upstreamStale?: boolean
  /**
   * Flags the upstream removed with FLAG_NOT_FOUND since its last clean answer (at most
   * {@link MAX_NOT_FOUND}, the latest kept): passed on while the answer served is partial (see `toEntries`).
   */
  notFound?: string[]
  /** Which of this process's upstream answers it is (a counter; in memory only): see `onReaskNews`. */
  answered?: number
  /**
   * Served stale (the upstream failing, or read back from the data dir) since it was last
   * answered: the upstream's next answer is news for the tabs that were told so, even unchanged.
   */
  servedStale?: true
  /** With --redis: the store's version it was asked for (or taken) at; see `ContextRecord.storeVersion`. */
  storeVersion?: number
  /** With --redis, asked for without a version: the newest version seen then; see `ContextRecord.storeSince`. */
  storeSince?: number
  /** Read back from the data dir dated after the clock at the restart (in memory only): its time orders nothing. */
  clockAhead?: true
  /**
   * Taken from the store (--redis), another relay's answer, not answered here since (in memory
   * only): it may predate this start as one read back from the data dir does, so a --snapshot made
   * after it is served in its place (see `over` in snapshotStandIn.ts).
   */
  taken?: true
  /** The request that produced it, kept in memory only, so a refresh can ask again. */
  request?: { context: EvaluationContext; forwarded: Record<string, string> }
  /** Its estimated size in the heap ({@link heldBytes}), counted against the byte bound; set by the cache. */
  bytes?: number
  /** A hash of the answer as served (its flags and metadata, not its age); set by the cache. */
  digest?: string
}

/**
 * The cache key of a request: a SHA-256 of the full context and the forwarded headers (names
 * lower-cased, sorted). Two users, or one user with two API keys, never share a key.
 */
export function contextKey(context: EvaluationContext, forwarded: Record<string, string>): string {
  const headers = Object.keys(forwarded)
    .map((name) => [name.toLowerCase(), forwarded[name]] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return createHash('sha256').update(stableStringify({ context, headers })).digest('base64url')
}

/** A map of {@link HeldContext}s bounded by count and by bytes, least recently used out first. */
export interface ContextCache {
  get(key: string): HeldContext | undefined
  /** The context held, without making it the most recently used (a re-ask round's look). */
  peek(key: string): HeldContext | undefined
  /** Holds `held` as the most recently used; with `keepPlace`, a context held keeps its place (a re-ask round's answer). */
  set(key: string, held: HeldContext, keepPlace?: boolean): void
  delete(key: string): void
  size(): number
  /** Every entry, least recently used first (the order they are saved and restored in). */
  entries(): Array<[string, HeldContext]>
  toRecords(): ContextRecord[]
  /** Restores saved records (oldest first) into an empty cache. */
  load(records: readonly ContextRecord[]): void
  /**
   * A version of everything held: a hash that changes when any held answer changes (or a context
   * comes or goes), and is the same on two relays that hold the same answers, whatever the order
   * they got them in or their age; null while nothing is held. Kept up to date as entries come and
   * go (one hash per change), so reading it costs nothing.
   */
  version(): string | null
}

/**
 * Creates an empty {@link ContextCache} holding at most `max` contexts and `maxBytes` of answers
 * (1,000 flags for each of 10,000 users would otherwise be a gigabyte). The most recent entry is
 * always kept, even alone over the byte bound.
 */
export function createContextCache(max = DEFAULT_MAX_CONTEXTS, maxBytes = DEFAULT_MAX_CONTEXT_BYTES): ContextCache {
  // The XOR of one hash per (key, answer) held: order-independent, and an entry that leaves is
  // taken out by XOR-ing its hash in again.
  const sum = Buffer.alloc(32)
  const toggle = (key: string, held: HeldContext) => {
    const hash = createHash('sha256').update(`${key} ${held.digest}`).digest()
    for (let i = 0; i < sum.length; i++) sum[i] ^= hash[i]
  }
  const lru = createLru<HeldContext>({
    maxEntries: max,
    maxBytes,
    cost: (_key, held) => (held.bytes ??= heldBytes(held)),
    oversize: 'keep',
    removed: toggle,
  })
  const set = (key: string, held: HeldContext, keepPlace?: boolean) => {
    held.digest ??= answerDigest(held)
    toggle(key, held)
    lru.set(key, held, keepPlace)
  }
  return {
    get: lru.get,
    peek: lru.peek,
    set,
    delete: lru.delete,
    size: () => lru.size().entries,
    entries: lru.entries,
    toRecords: () => lru.entries().map(([key, held]) => toContextRecord(key, held)),
    load(records) {
      for (const record of records) set(record.key, fromContextRecord(record, 'data-dir'))
    },
    version: () => (lru.size().entries === 0 ? null : sum.toString('base64url', 0, 16)),
  }
}

// The answer as it is served (toEntries: a value kept through an error says STALE), flags sorted
// by key, so two relays that merged the same answers in another order agree.
function answerDigest(held: HeldContext): string {
  const entries = toEntries(held.flags, held.notFound).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  return createHash('sha256').update(stableStringify([entries, held.metadata ?? null])).digest('base64url')
}

/** One held context as a record (the data-dir form, also what `--redis` shares between relays). */
export function toContextRecord(key: string, held: HeldContext): ContextRecord {
  const record: ContextRecord = { key, fetchedAt: held.fetchedAt, flags: [...held.flags.values()].map(toStored) }
  if (held.etag !== undefined) record.etag = held.etag
  if (held.metadata !== undefined) record.metadata = held.metadata
  // Another relay taking this record (--redis) must not serve a stale relay upstream's answer as fresh.
  if (held.upstreamStale) record.upstreamStale = true
  if (held.notFound?.length) record.notFound = held.notFound
  return record
}

/** A record back as a held context, marked as coming from `source`. */
export function fromContextRecord(record: ContextRecord, source: HeldContext['source']): HeldContext {
  const flags = new Map<string, HeldFlag>()
  for (const stored of record.flags) flags.set(stored.key, { ...stored, source: 'network' } as HeldFlag)
  const held: HeldContext = { flags, fetchedAt: record.fetchedAt, source }
  if (record.etag !== undefined) held.etag = record.etag
  if (record.metadata !== undefined) held.metadata = record.metadata
  if (record.upstreamStale) held.upstreamStale = true
  if (record.notFound?.length) held.notFound = record.notFound
  if (record.storeVersion !== undefined) held.storeVersion = record.storeVersion
  if (record.storeSince !== undefined) held.storeSince = record.storeSince
  return held
}

function toStored(flag: HeldFlag): ContextRecord['flags'][number] {
  const stored: ContextRecord['flags'][number] = { key: flag.key, stale: flag.stale }
  if (flag.value !== undefined) stored.value = flag.value
  if (flag.variant !== undefined) stored.variant = flag.variant
  if (flag.reason !== undefined) stored.reason = flag.reason
  if (flag.metadata !== undefined) stored.metadata = flag.metadata
  if (flag.errorCode !== undefined) stored.errorCode = flag.errorCode
  if (flag.updatedAt !== undefined) stored.updatedAt = flag.updatedAt
  return stored
}

// What V8 spends on what is held, per piece (64-bit, pointer compression off, as Node ships it):
// an object's header and a slot per property, a Map entry with its share of the table (a Map
// grows by doubling), a string's header and one byte a character (two beyond Latin-1). Numbers
// that are not small integers live in their own heap object. Calibrated against the heap itself
// (test/server/relay-proxy-memory.test.ts), where an answer's JSON text was 1.3 (long string
// values) to 9 (short boolean flags) times smaller than what it cost there.
const OBJECT_BYTES = 24
const SLOT_BYTES = 8
const MAP_ENTRY_BYTES = 48
// The entry itself beside its answer: the HeldContext, its flag Map, the LRU's entry and key, the
// request kept for re-asks.
const CONTEXT_BYTES = 768

/**
 * An estimate of the heap bytes one held context costs: its flags as parsed objects (not their
 * JSON text, 1.3 to 9 times smaller), its metadata, the request kept to ask again and the
 * bookkeeping around them. What `maxContextBytes` counts.
 */
export function heldBytes(held: HeldContext): number {
  let bytes = CONTEXT_BYTES + valueBytes(held.metadata) + valueBytes(held.etag) + valueBytes(held.request?.context) + valueBytes(held.request?.forwarded) + valueBytes(held.notFound)
  for (const flag of held.flags.values()) {
    bytes += MAP_ENTRY_BYTES + OBJECT_BYTES + SLOT_BYTES * 10
    bytes += valueBytes(flag.key) + valueBytes(flag.value) + valueBytes(flag.variant) + valueBytes(flag.reason) + valueBytes(flag.metadata) + valueBytes(flag.errorCode)
  }
  return bytes
}

function valueBytes(value: unknown): number {
  if (typeof value === 'string') return 16 + (/[^\u0000-\u00ff]/.test(value) ? 2 : 1) * value.length
  if (typeof value === 'number') return Number.isInteger(value) && Math.abs(value) < 2 ** 30 ? 0 : 16
  if (value === null || typeof value !== 'object') return 0
  let bytes = OBJECT_BYTES
  if (Array.isArray(value)) for (const item of value) bytes += SLOT_BYTES + valueBytes(item)
  else for (const key in value) bytes += SLOT_BYTES + valueBytes((value as Record<string, unknown>)[key])
  return bytes
}
