// The last-known-good cache (CONTRACT §5): one entry per (url, targetingKey) under a hashed key,
// holding no raw targeting key or attributes; at most ten contexts, least recently used first
// out; no expiry. Corrupt, foreign or old-version entries are discarded with a warning.
//
// Recency lives in each entry (`usedAt`) rather than in a shared index, so two tabs writing at
// once cannot corrupt an index; eviction reads the (at most eleven) entries and drops the oldest.
import { hashString } from './hash'
import { CACHE_VERSION, parseCacheRecord, type CacheRecord } from './schemas'
import type { SafeStorage } from './storage'
import type { FlagEntry, Logger } from './types'

export const CACHE_PREFIX = 'holdfast:flags:'
/** How many contexts an origin keeps. */
export const MAX_CACHED_CONTEXTS = 10

export interface FlagCache {
  /** The entry for a context, or undefined (missing, corrupt, foreign: all a miss). */
  read(targetingKey: string): Promise<CacheRecord | undefined>
  /** What this page already read or wrote for a context, synchronously (for a no-flash `setContext`). */
  peek(targetingKey: string): CacheRecord | undefined
  write(targetingKey: string, record: { flags: FlagEntry[]; etag?: string; contextHash?: string }): Promise<void>
  remove(targetingKey: string): Promise<void>
  /** Removes every cached context of this origin. */
  clear(): Promise<void>
}

export function createFlagCache(options: { storage: SafeStorage; url: string; logger: Logger; now: () => number }): FlagCache {
  const { storage, url, logger, now } = options
  const memo = new Map<string, CacheRecord>()
  const keyFor = (targetingKey: string) => CACHE_PREFIX + hashString(`${url}\n${targetingKey}`)

  async function evict() {
    const all = (await storage.keys()).filter((k) => k.startsWith(CACHE_PREFIX))
    if (all.length <= MAX_CACHED_CONTEXTS) return
    const records = await storage.getMany(all)
    const ranked = all
      .map((key, i) => ({ key, usedAt: usedAtOf(records[i]) }))
      .sort((a, b) => a.usedAt - b.usedAt)
    await storage.del(ranked.slice(0, ranked.length - MAX_CACHED_CONTEXTS).map((r) => r.key))
  }

  return {
    async read(targetingKey) {
      const key = keyFor(targetingKey)
      const raw = await storage.get(key)
      if (raw === undefined) return undefined
      const record = parseCacheRecord(raw)
      if (!record) {
        logger.warn('[holdfast] discarded an unreadable cache entry (corrupt, foreign or from another version)')
        await storage.del([key])
        return undefined
      }
      memo.set(key, record)
      // Reading is use: refresh recency so the LRU order follows what users actually load.
      void storage.set(key, { ...record, usedAt: now() })
      return record
    },
    peek: (targetingKey) => memo.get(keyFor(targetingKey)),
    async write(targetingKey, input) {
      const key = keyFor(targetingKey)
      const at = now()
      const record: CacheRecord & { usedAt: number } = { v: CACHE_VERSION, flags: input.flags, savedAt: at, usedAt: at }
      if (input.etag !== undefined) record.etag = input.etag
      if (input.contextHash !== undefined) record.contextHash = input.contextHash
      memo.set(key, record)
      if (await storage.set(key, record)) await evict()
    },
    async remove(targetingKey) {
      const key = keyFor(targetingKey)
      memo.delete(key)
      await storage.del([key])
    },
    async clear() {
      memo.clear()
      const all = (await storage.keys()).filter((k) => k.startsWith(CACHE_PREFIX))
      await storage.del(all)
    },
  }
}

function usedAtOf(raw: unknown): number {
  if (raw && typeof raw === 'object') {
    const r = raw as { usedAt?: unknown; savedAt?: unknown }
    if (typeof r.usedAt === 'number') return r.usedAt
    if (typeof r.savedAt === 'number') return r.savedAt
  }
  // Unreadable entries are the first to go.
  return -Infinity
}
