/**
 * A least-recently-used map bounded by entry count and by the bytes its entries cost. A Map keeps
 * insertion order, so re-inserting on a hit makes the first key the least recently used. Shared by
 * the answer cache (bulk answers per definitions version and request) and the relay's per-context
 * last known good.
 */
export interface Lru<V> {
  get(key: string): V | undefined
  /** The value, without making it the most recently used (a look that is no use). */
  peek(key: string): V | undefined
  /**
   * Stores `value` as the most recently used; with `keepPlace`, a key already held keeps its place
   * (a value refreshed by the server itself, not used).
   */
  set(key: string, value: V, keepPlace?: boolean): void
  delete(key: string): void
  clear(): void
  /** Entries, least recently used first. */
  entries(): Array<[string, V]>
  size(): { entries: number; bytes: number }
}

export interface LruOptions<V> {
  /** At most this many entries. Default: unbounded. */
  maxEntries?: number
  /** At most this many bytes, as `cost` counts them. */
  maxBytes: number
  /** What one entry costs, in bytes (called once per set and once per removal: keep it cheap or cached). */
  cost(key: string, value: V): number
  /**
   * An entry that alone costs more than `maxBytes`: `'skip'` does not store it (a cache that can
   * recompute), `'keep'` stores it as the only entry (a last known good that must not be lost).
   */
  oversize: 'skip' | 'keep'
  /** Told of every entry that leaves: replaced, deleted, evicted or cleared. Default: none. */
  removed?(key: string, value: V): void
}

/** Creates an empty {@link Lru}. */
export function createLru<V>(options: LruOptions<V>): Lru<V> {
  const map = new Map<string, V>()
  const maxEntries = Math.max(1, Math.floor(options.maxEntries ?? Infinity))
  let bytes = 0
  // The most recently used key: a hit on it (the same context polling, again and again) is already
  // in place, and moving it would cost a delete and an insert into the Map on every request.
  let newest: string | undefined
  const remove = (key: string) => {
    const old = map.get(key)
    if (old === undefined) return
    bytes -= options.cost(key, old)
    map.delete(key)
    if (key === newest) newest = undefined
    options.removed?.(key, old)
  }
  return {
    get(key) {
      const value = map.get(key)
      if (value !== undefined && key !== newest) {
        map.delete(key)
        map.set(key, value)
        newest = key
      }
      return value
    },
    peek: (key) => map.get(key),
    set(key, value, keepPlace) {
      const size = options.cost(key, value)
      if (size > options.maxBytes && options.oversize === 'skip') return
      const old = keepPlace ? map.get(key) : undefined
      if (old !== undefined) {
        // Map.set on a key it has keeps the key's place in the order.
        bytes -= options.cost(key, old)
        map.set(key, value)
        options.removed?.(key, old)
      } else {
        remove(key)
        map.set(key, value)
        newest = key
      }
      bytes += size
      while (map.size > maxEntries || (bytes > options.maxBytes && map.size > 1)) remove(map.keys().next().value as string)
    },
    delete: remove,
    clear() {
      if (options.removed) for (const [key, value] of map) options.removed(key, value)
      map.clear()
      newest = undefined
      bytes = 0
    },
    entries: () => [...map.entries()],
    size: () => ({ entries: map.size, bytes }),
  }
}

/**
 * Sets `key` in `map` as the newest entry and keeps `map` at most `max` long, the oldest out: for
 * maps with one entry per context, credentials or key, which anyone may send new ones of.
 */
export function setBounded<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  map.delete(key)
  map.set(key, value)
  if (map.size > max) map.delete(map.keys().next().value as string)
}
