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
  /** The answer to `body` made from what `prefix` names (definitions version and freshness), if held. */
  get(prefix: string, body: string): CachedAnswer | undefined
  set(prefix: string, body: string, answer: CachedAnswer): void
  /** Drops everything (a new definitions version makes every entry unreachable anyway). */
  clear(): void
  /** Entries and bytes held. */
  size(): { entries: number; bytes: number }
}

interface Entry {
  prefix: string
  answer: CachedAnswer
}

/**
 * Creates an {@link AnswerCache} holding at most `maxBytes` (default
 * {@link DEFAULT_ANSWER_CACHE_BYTES}; 0 disables caching) of answer bodies and keys. An entry is
 * keyed by the request ({@link answerKey}) and holds the prefix it was answered under (definitions
 * version and freshness, built by the caller): it is a hit only under that same prefix, so an
 * entry can never outlive the definitions it was computed from. The key is the body as received,
 * not a concatenation with the prefix, so a lookup hashes the string the request already made.
 */
export function createAnswerCache(maxBytes = DEFAULT_ANSWER_CACHE_BYTES): AnswerCache {
  const lru = createLru<Entry>({
    maxBytes,
    cost: (key, entry) => (key.length + entry.prefix.length + entry.answer.etag.length) * 2 + entry.answer.body.length + 96,
    oversize: 'skip',
  })
  return {
    get(prefix, body) {
      const key = answerKey(body)
      if (key === undefined) return undefined
      const entry = lru.get(key)
      return entry !== undefined && entry.prefix === prefix ? entry.answer : undefined
    },
    set(prefix, body, answer) {
      const key = answerKey(body)
      if (key !== undefined) lru.set(key, { prefix, answer })
    },
    clear: lru.clear,
    size: lru.size,
  }
}

/** Request bodies up to this many characters are their own cache key; longer ones are hashed. */
export const RAW_KEY_MAX_CHARS = 2048

/**
 * The cache key of a request body. A short body (a page's context is a few hundred bytes) is the
 * key itself: a repeated request costs a Map lookup, no hash. A longer one is keyed by `#` and its
 * SHA-1: V8 hashes a long string by its length alone, so thousands of long bodies of one length
 * (which anyone may post) would share one Map bucket and make every lookup compare them all —
 * milliseconds each, a denial of service. No JSON document starts with `#`, so a short body that
 * does (never a valid request, never cached) is not looked up at all: undefined, and the two forms
 * never meet.
 */
export function answerKey(body: string): string | undefined {
  if (body.length > RAW_KEY_MAX_CHARS) return `#${etagOf(body)}`
  return body.charCodeAt(0) === 35 ? undefined : body
}
