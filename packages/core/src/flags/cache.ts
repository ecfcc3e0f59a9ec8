// The last-known-good cache: one entry per (url, targetingKey) under a hashed key (the client makes
// static headers part of `url`: another SDK key, another entry), holding no raw targeting key,
// attributes or credentials; at most ten contexts, least recently used first out; no expiry.
// Corrupt, foreign or old-version entries are discarded with a warning.
//
// Recency lives in each entry (`usedAt`) rather than in a shared index, so two tabs writing at
// once cannot corrupt an index; eviction reads the (at most eleven) entries and drops the oldest.
//
// This page's operations run one after another on one chain. Without it a read's "touch" (the
// write that records recency) could land after an eviction had removed that entry and bring it
// back, and `close()` could not know when the last write and its eviction were done:
//
//   write(u11) ─ evict(u1) ─┐            chained: read(u1) runs after the eviction, finds nothing
//   read(u1) ── touch(u1) ──┴─ u1 back!  (unchained)
import { hashString } from '../platform/hash'
import type { SafeStorage } from '../platform/storage'
import { CACHE_VERSION, CLOCK_SKEW_MS, parseCacheRecord, trustedTime, type CacheRecord } from '../protocol/readers'
import type { FlagEntry, Logger } from '../types'

/** Key prefix of cache entries in storage. */
export const CACHE_PREFIX = 'holdfast:flags:'
/** How many contexts an origin keeps. */
export const MAX_CACHED_CONTEXTS = 10

/** What the driver writes for a context after a successful response. */
export interface CacheInput {
  flags: FlagEntry[]
  etag?: string
  etagKeys?: string[]
  contextHash?: string
  heldAt?: number
  /** From a relay's stale answer: see `write`. */
  stale?: boolean
}

/** The cache of one client. Never rejects. */
export interface FlagCache {
  /** The entry for a context, or undefined (missing, corrupt, foreign: all a miss). Reading counts as use. */
  read(targetingKey: string): Promise<CacheRecord | undefined>
  /** What this page already read or wrote for a context, synchronously (for a no-flash `setContext`). */
  peek(targetingKey: string): CacheRecord | undefined
  /**
   * Writes the entry, then evicts past ten contexts (least recently used first). A stale record
   * (`stale`) is not written over an entry of the same context vouched for later (`heldAt`): the
   * page then forgets the record (`peek`), so a switch back reads that entry.
   */
  write(targetingKey: string, record: CacheInput): Promise<void>
  remove(targetingKey: string): Promise<void>
  /** Removes every cached context of this origin. */
  clear(): Promise<void>
  /** Resolves once every operation started so far (writes, evictions, touches) has finished. */
  idle(): Promise<void>
}

/** Creates the cache of one client on `storage`, for the flag server at `url`. */
export function createFlagCache(options: { storage: SafeStorage; url: () => string; logger: Logger; now: () => number }): FlagCache {
  const { storage, url, logger, now } = options
  const memo = new Map<string, CacheRecord>()
  const keyFor = (targetingKey: string) => CACHE_PREFIX + hashString(`${url()}\n${targetingKey}`)
  let chain: Promise<unknown> = Promise.resolve()
  let lastUse = 0
  /** Bumped by every remove() and clear(): a read they overtook is a miss (see `read`). */
  let drops = 0

  /** Runs `task` after everything queued before it; never rejects. */
  function queue<T>(task: () => Promise<T>, onError: T): Promise<T> {
    const run = chain.then(task).catch((error: unknown) => {
      logger.warn('a cache operation failed', error)
      return onError
    })
    chain = run
    return run
  }

  // Strictly increasing within the page: two users written in one millisecond still have an order,
  // so the eleventh user evicts exactly the least recently used one. After the clock jumps back
  // (past trustedTime's minute of skew) the order starts again from the clock: kept going from
  // before the jump, every later use would read as "in the future", the oldest possible, and the
  // user just loaded would be the one evicted.
  function useTime(): number {
    const t = now()
    lastUse = lastUse < t || lastUse > t + CLOCK_SKEW_MS ? t : lastUse + 1
    return lastUse
  }

  async function evict() {
    const all = (await storage.keys()).filter((k) => k.startsWith(CACHE_PREFIX))
    if (all.length <= MAX_CACHED_CONTEXTS) return
    const records = await storage.getMany(all)
    const t = now()
    const ranked = all.map((key, i) => ({ key, usedAt: usedAtOf(records[i], t) })).sort((a, b) => a.usedAt - b.usedAt)
    // Each deleted only if still as judged, in the transaction that checks it: another tab that
    // saved (or read) that user since made it the most recently used, and it stays.
    //
    //   tab B                         write(u1, v2) ──┐       one transaction: the check sees v2
    //   tab A   write(u11) ─ read all (u1 oldest) ────┴─ delete(u1): v2 gone (two)
    for (const { key, usedAt } of ranked.slice(0, ranked.length - MAX_CACHED_CONTEXTS)) {
      memo.delete(key)
      await storage.update(key, (value) => (usedAtOf(value, t) > usedAt ? 0 : null))
    }
  }

  return {
    read(targetingKey) {
      const key = keyFor(targetingKey)
      const at = drops
      return queue(async () => {
        let raw: unknown
        let record: CacheRecord | undefined
        // Reading is use: refresh recency so the LRU order follows what users actually load. On the
        // chain, so it can never land after an eviction and bring the entry back; in the read's
        // transaction, so it cannot write the entry as read over what another tab saved meanwhile:
        //
        //   tab B   write(v2) ──────────┐              one transaction: the touch is before or after
        //   tab A   read(v1) ───────────┴─ touch(v1)   v2 as a whole (two: v2 was lost, v1 back)
        // An unreadable entry is deleted in that transaction too: a newer one another tab wrote over
        // it a moment later is not.
        await storage.update(key, (value) =>
          (raw = value) === undefined ? 0 : (record = parseCacheRecord(value, now())) ? { ...(value as object), usedAt: useTime() } : null,
        )
        // The entry was removed while this read was out (a 401 with clearCacheOnUnauthorized, a
        // logout's clearCache()): what it read is what the app asked to forget, never shown again.
        if (drops != at) return
        if (record) memo.set(key, record)
        else if (raw !== undefined) logger.warn('discarded an unreadable cache entry (corrupt, foreign or from another version)')
        return record
      }, undefined)
    },
    peek: (targetingKey) => memo.get(keyFor(targetingKey)),
    write(targetingKey, input) {
      const key = keyFor(targetingKey)
      // An optional field the input leaves undefined is stored so, and read back as absent.
      const record: CacheRecord & { usedAt: number } = { ...input, v: CACHE_VERSION, savedAt: now(), usedAt: useTime() }
      memo.set(key, record)
      return queue(async () => {
        // The entry is shared by the pages of the origin. In one page a relay's stale answer older
        // than the values held never replaces them (merge.ts); a page that held older values still
        // took it, and wrote it over the newer values another page had saved: after a reload in an
        // outage, the older values were back. (Read raw: a foreign entry's fields compare as nothing.
        // Read and written in one transaction: see `read`. Its time is trusted as a read trusts it: one
        // written while the clock ran days ahead is the oldest, or every stale answer, newer ones too,
        // was left unsaved for those days.)
        // Not saved, the record is not this page's memory of the user either: dated by its save, it
        // looked newer than the entry, and switching away and back showed it (older values) over the
        // entry. Forgotten, a switch back reads the entry (the previous user's values stay until then).
        // Only a stale record needs that read: any other is written whatever is held, as a plain put
        // that commits as soon as it is asked for. Read first, the write is asked for only once the
        // read answers; behind another tab's write, the page went into the back/forward cache before
        // it did, the frozen page kept the transaction open, that tab's next write waited on it, and
        // Chromium evicted the page (IgnoreEventAndEvict) with the answer's values never saved
        // (tabs-lifecycle.test.ts "a flag answer whose cache write waits on another tab").
        await (input.stale
          ? storage.update(key, (held) =>
              held && (held as CacheInput).contextHash == input.contextHash && trustedTime((held as CacheInput).heldAt, now()) > input.heldAt!
                ? (memo.get(key) == record && memo.delete(key), 0)
                : record,
            )
          : storage.set(key, record))
        await evict()
      }, undefined)
    },
    remove(targetingKey) {
      const key = keyFor(targetingKey)
      memo.delete(key)
      drops++
      return queue(() => storage.del([key]), undefined)
    },
    clear() {
      memo.clear()
      drops++
      return queue(() => storage.clear(CACHE_PREFIX), undefined)
    },
    idle: () => queue(async () => undefined, undefined),
  }
}

// A time written while a clock ran hours ahead would keep its entry "most recent" for hours:
// such a time counts as the oldest (trustedTime), so the entry is the first to go, not the last.
function usedAtOf(raw: unknown, now: number): number {
  if (raw && typeof raw === 'object') {
    const r = raw as { usedAt?: unknown; savedAt?: unknown }
    if (typeof r.usedAt === 'number') return trustedTime(r.usedAt, now)
    if (typeof r.savedAt === 'number') return trustedTime(r.savedAt, now)
  }
  // Unreadable entries are the first to go.
  return -Infinity
}
