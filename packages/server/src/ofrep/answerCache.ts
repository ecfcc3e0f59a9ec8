import { createLru } from '../lru'

/** A bulk answer ready to send: the exact body (UTF-8 bytes, encoded once), its ETag, and the failure codes it holds (for metrics). */
export interface CachedAnswer {
  body: Buffer
  etag: string
  errorCodes: string[]
}

/** Default bound of the answer cache: 32 MiB of bodies. */
export const DEFAULT_ANSWER_CACHE_BYTES = 32 * 1_048_576

/** A least-recently-used cache of bulk answers, bounded by the bytes it holds. */
export interface AnswerCache {
  get(key: string): CachedAnswer | undefined
  set(key: string, answer: CachedAnswer): void
  /** Drops everything (a new definitions version makes every entry unreachable anyway). */
  clear(): void
  /** Entries and bytes held. */
  size(): { entries: number; bytes: number }
}

/**
 * Creates an {@link AnswerCache} holding at most `maxBytes` (default
 * {@link DEFAULT_ANSWER_CACHE_BYTES}; 0 disables caching) of answer bodies and keys. Keys are
 * built by the caller from the definitions version and a hash of the request, so an entry can
 * never outlive the definitions it was computed from. A Map keeps insertion order: re-inserting
 * on a hit makes the first key the least recently used.
 */
export function createAnswerCache(maxBytes = DEFAULT_ANSWER_CACHE_BYTES): AnswerCache {
  const lru = createLru<CachedAnswer>({
    maxBytes,
    cost: (key, answer) => (key.length + answer.etag.length) * 2 + answer.body.length + 64,
    oversize: 'skip',
  })
  return { get: lru.get, set: lru.set, clear: lru.clear, size: lru.size }
}
