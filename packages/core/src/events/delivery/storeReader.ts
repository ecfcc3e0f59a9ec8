// The reading side of the event store (../eventStore.ts), loaded with delivery: list what is queued
// (this tab's events and other tabs'), read a batch, and remove what left the queue.
import type { SafeStorage } from '../../platform/storage'
import type { Clock, HoldfastEvent } from '../../types'
import type { KeyClock } from '../eventKey'
import type { EventStore } from '../eventStore'

/** An event read back with the key it is stored under. */
export interface StoredEvent {
  key: string
  event: HoldfastEvent
}

/** Lists, reads and removes queued events. */
export interface StoreReader {
  /** Writes what is buffered, then lists every queued key, oldest first. Refreshes `size()`. */
  list(): Promise<string[]>
  /** Reads queued events; keys another tab removed meanwhile are left out, unreadable ones reported. */
  read(keys: string[]): Promise<{ events: StoredEvent[]; corrupt: string[] }>
  /** Takes events out of the queue for good. */
  remove(keys: string[]): Promise<void>
  /** How many of `keys` are still queued: `maxQueued` may have pushed some out while their request was out. */
  queued(keys: string[]): number
}

/** Creates the reading side of `store`, whose storage and clock are these (the queue's). */
export function createStoreReader(store: EventStore, storage: SafeStorage, clock: Clock): StoreReader {
  const state = store.state
  const { own, prefix } = state

  return {
    list: () =>
      store.persist().then(() =>
        state.serial(async () => {
          const listed = (await storage.keys()).filter((key) => key.startsWith(prefix) && !state.deleting.has(key))
          const present = new Set(listed)
          // Written and gone from IndexedDB: another tab sent it. That holds for one written to
          // memory too once the page went back to IndexedDB (platform/storage.ts copies it there,
          // where other tabs take it): kept, it went out a second time. Memory says nothing: it is
          // this page's alone, emptied once copied (and one written to IndexedDB before the page
          // moved to memory is still this page's to send).
          if (storage.kind() == 'indexeddb') for (const [key, item] of own) if (item.written && !present.has(key)) own.delete(key)
          state.others = listed.filter((key) => !own.has(key)).sort()
          observeEventKey(state.keys, clock.now(), state.others[state.others.length - 1], prefix)
          state.trim()
          state.changed()
          return merge(state.others, [...own.keys()])
        }),
      ),

    async read(list) {
      const fromStorage = list.filter((key) => !own.has(key))
      const values = fromStorage.length > 0 ? await storage.getMany(fromStorage) : []
      const byKey = new Map(fromStorage.map((key, i) => [key, values[i]]))
      const events: StoredEvent[] = []
      const corrupt: string[] = []
      const vanished = new Set<string>()
      for (const key of list) {
        const value = own.get(key)?.event ?? byKey.get(key)
        if (value === undefined) vanished.add(key)
        else if (isStoredEvent(value)) events.push({ key, event: value })
        else corrupt.push(key)
      }
      if (vanished.size > 0) {
        // Another tab sent them meanwhile.
        state.others = state.others.filter((key) => !vanished.has(key))
        state.changed()
      }
      return { events, corrupt }
    },

    remove(list) {
      if (list.length === 0) return Promise.resolve()
      const gone = new Set(list)
      for (const key of list) own.delete(key)
      state.others = state.others.filter((key) => !gone.has(key))
      state.changed()
      return state.forget(list)
    },

    queued(list) {
      // One Set of the other tabs' keys, as remove() walks them once too: includes() per key was keys × others.
      const others = new Set(state.others)
      return list.filter((key) => own.has(key) || others.has(key)).length
    },
  }
}

// A stored key claiming to be more than a day ahead of our clock is corrupt, not skewed: it must not
// drag every later key along with it.
const MAX_AHEAD_MS = 24 * 60 * 60 * 1000

/** Raises `clock` to a key found in storage, so keys handed out later sort after it; `prefix` is the store's `EVENT_PREFIX`. */
export function observeEventKey(clock: KeyClock, now: number, key: string | undefined, prefix: string): void {
  if (!key?.startsWith(prefix)) return
  const [t, s] = key.slice(prefix.length).split(':').map(Number)
  if (!Number.isSafeInteger(t) || !Number.isSafeInteger(s) || t > now + MAX_AHEAD_MS) return
  if (t > clock.tick || (t === clock.tick && s > clock.seq)) Object.assign(clock, { tick: t, seq: s })
}

/** Merges two sorted key lists into one. */
function merge(a: string[], b: string[]): string[] {
  const out: string[] = []
  let i = 0
  let j = 0
  while (i < a.length || j < b.length) out.push(j >= b.length || (i < a.length && a[i] < b[j]) ? a[i++] : b[j++])
  return out
}

/**
 * Whether a value read back from the event store is a sendable event: `{ id, type, name, time }`
 * with a known type. Only what delivery needs is checked; the rest is sent as it was logged (the
 * receiver validates its own input).
 */
export function isStoredEvent(value: unknown): value is HoldfastEvent {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const { id, type, name, time } = value as Record<string, unknown>
  return typeof id === 'string' && (type === 'exposure' || type === 'custom') && typeof name === 'string' && Number.isFinite(time)
}
