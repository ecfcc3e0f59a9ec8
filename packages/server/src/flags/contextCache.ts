// Proxy mode's memory: the last good answer per (context, forwarded credentials), least recently
// used out first. Keys are hashes, so neither the raw context nor a forwarded token is ever
// persisted, and one credential's answers can never be looked up with another's.
import { createHash } from 'node:crypto'
import { stableStringify, type FlagMap, type HeldFlag } from '@holdfast/core'
import type { EvaluationContext } from '@openfeature/core'
import { createLru } from '../lru'
import { toEntries } from './proxyAnswer'
import type { ContextRecord } from './records'

/** Default bound on the contexts held in proxy mode: 10,000. */
export const DEFAULT_MAX_CONTEXTS = 10_000

/** Default bound on the bytes of answers held in proxy mode (estimated as JSON): 64 MiB. */
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
  /** The request that produced it, kept in memory only, so a refresh can ask again. */
  request?: { context: EvaluationContext; forwarded: Record<string, string> }
  /** Estimated size (JSON characters of the flags); counted against the byte bound. */
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
  set(key: string, held: HeldContext): void
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
    cost: (_key, held) => (held.bytes ??= JSON.stringify([...held.flags.values()]).length + 64),
    oversize: 'keep',
    removed: toggle,
  })
  const set = (key: string, held: HeldContext) => {
    held.digest ??= answerDigest(held)
    toggle(key, held)
    lru.set(key, held)
  }
  return {
    get: lru.get,
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
  const entries = toEntries(held.flags).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  return createHash('sha256').update(stableStringify([entries, held.metadata ?? null])).digest('base64url')
}

/** One held context as a record (the data-dir form, also what `--redis` shares between relays). */
export function toContextRecord(key: string, held: HeldContext): ContextRecord {
  const record: ContextRecord = { key, fetchedAt: held.fetchedAt, flags: [...held.flags.values()].map(toStored) }
  if (held.etag !== undefined) record.etag = held.etag
  if (held.metadata !== undefined) record.metadata = held.metadata
  // Another relay taking this record (--redis) must not serve a stale relay upstream's answer as fresh.
  if (held.upstreamStale) record.upstreamStale = true
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
