import { etagOf } from '../http/body'
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
 * built by the caller from the definitions version and the request ({@link answerKey}), so an
 * entry can never outlive the definitions it was computed from. A Map keeps insertion order: re-inserting
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

/** Request bodies up to this many characters are their own cache key; longer ones are hashed. */
export const RAW_KEY_MAX_CHARS = 2048

/**
 * The cache key of a request body under `prefix` (what it is answered from). A short body (a
 * page's context is a few hundred bytes) is the key itself: a repeated request costs a Map lookup,
 * no hash. A longer one is keyed by its SHA-1: V8 hashes a long string by its length alone, so
 * thousands of long bodies of one length (which anyone may post) would share one Map bucket and
 * make every lookup compare them all — milliseconds each, a denial of service. The marker
 * character keeps the two forms apart.
 */
export function answerKey(prefix: string, body: string): string {
  return body.length <= RAW_KEY_MAX_CHARS ? `${prefix}r${body}` : `${prefix}h${etagOf(body)}`
}
