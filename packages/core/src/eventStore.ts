// The persisted event queue (CONTRACT §6). Every event gets its own storage entry under
// `holdfast:event:<time>:<seq>:<id>`, so a key listing sorted as strings is oldest first, and every
// tab of the origin that opens the same database sees one shared queue. An event leaves the queue
// only through `remove` (after a 2xx, a permanent rejection, or the `maxQueued` bound).
//
// Events are buffered in memory for at most WRITE_DELAY_MS and written together with `setMany`.
// Until a write succeeded the buffer is the only copy, so a failed write keeps them there: the
// SafeStorage has moved to memory by then and the next write lands. Storage mutations (writes,
// deletions, listings) run one after another, so a deletion can never be overtaken by an older
// write of the same key and resurrect an event that was already sent.
import { EVENT_PREFIX, eventKey, WRITE_DELAY_MS, type HeldEvent } from './eventBasics'
import { isStoredEvent } from './schemas'
import type { SafeStorage } from './storage'
import type { Clock, HoldfastEvent, Logger } from './types'

/** An event read back with the key it is stored under. */
export interface StoredEvent {
  key: string
  event: HoldfastEvent
}

export interface EventStore {
  /** Buffers an event; it is written within WRITE_DELAY_MS. */
  add(event: HoldfastEvent): void
  /** Takes over what the stand-in held (lazyEventQueue.ts): written ones as persisted, the rest buffered. */
  adopt(held: HeldEvent[]): void
  /** Writes whatever is buffered now (and enforces the bound); resolves once done. */
  persist(): Promise<void>
  /** Every queued key, this tab's and other tabs', oldest first. Refreshes `size()`. */
  list(): Promise<string[]>
  /** Reads queued events; keys another tab removed meanwhile are left out, unreadable ones reported. */
  read(keys: string[]): Promise<{ events: StoredEvent[]; corrupt: string[] }>
  /** Takes events out of the queue for good. */
  remove(keys: string[]): Promise<void>
  /** Events waiting: the persisted ones this page knows of plus those not written yet. */
  size(): number
  /** The persisted ones alone, as of the last listing and this page's writes since. */
  stored(): number
}

export interface EventStoreOptions {
  storage: SafeStorage
  clock: Clock
  logger: Logger
  maxQueued: number
  /** Events pushed out by the bound. */
  onDrop: (count: number) => void
  /** `size()` moved. */
  onChange: () => void
}

export function createEventStore(options: EventStoreOptions): EventStore {
  const { storage, clock, maxQueued } = options
  /** Logged here, not yet written: only this page has them. Insertion order is log order. */
  const buffer = new Map<string, HoldfastEvent>()
  /** Persisted keys as far as this page knows (its last listing plus its own writes). */
  let known = new Set<string>()
  let timer: unknown
  let ops: Promise<unknown> = Promise.resolve()

  /** Runs storage mutations in order; a failing step never breaks the chain. */
  function serial<T>(step: () => Promise<T>): Promise<T> {
    const next = ops.then(step)
    ops = next.catch(() => undefined)
    return next
  }

  async function trim() {
    const over = known.size + buffer.size - maxQueued
    if (over <= 0) return
    const victims = [...known, ...buffer.keys()].sort().slice(0, over)
    const stored = victims.filter((key) => known.has(key))
    for (const key of victims) {
      buffer.delete(key)
      known.delete(key)
    }
    options.logger.warn(`[holdfast] the event queue is full (maxQueued ${maxQueued}); dropped the ${over} oldest`)
    options.onDrop(victims.length)
    if (stored.length > 0) await storage.del(stored)
  }

  async function write() {
    await trim()
    if (buffer.size === 0) return
    const entries = [...buffer]
    // SafeStorage moves to memory on the first failure, so a second try keeps the events for
    // this page at least; if even that fails they stay buffered and the next write tries again.
    const ok = (await storage.setMany(entries)) || (await storage.setMany(entries))
    if (!ok) return
    const dropped: string[] = []
    for (const [key, event] of entries) {
      if (buffer.get(key) !== event) dropped.push(key)
      else known.add(key)
      buffer.delete(key)
    }
    // Pushed out by the bound while this write was under way: it must not linger in storage.
    if (dropped.length > 0) await storage.del(dropped)
  }

  function persist(): Promise<void> {
    if (timer !== undefined) clock.clearTimeout(timer)
    timer = undefined
    return serial(write).then(options.onChange, (error: unknown) => options.logger.error('[holdfast] writing events failed', error))
  }

  return {
    add(event) {
      const key = eventKey(event)
      buffer.set(key, event)
      // The bound holds even while writes are slow: the oldest unwritten events go first.
      if (buffer.size > maxQueued) {
        const oldest = buffer.keys().next().value as string
        buffer.delete(oldest)
        options.onDrop(1)
      }
      timer ??= clock.setTimeout(() => {
        timer = undefined
        void persist()
      }, WRITE_DELAY_MS)
    },

    persist,

    adopt(held) {
      for (const { key, event, written } of held) {
        if (written) known.add(key)
        else buffer.set(key, event)
      }
    },

    list() {
      return serial(async () => {
        const keys = (await storage.keys()).filter((key) => key.startsWith(EVENT_PREFIX))
        known = new Set(keys)
        await trim()
        options.onChange()
        // Buffered events whose writes keep failing are still queued: they are listed so a
        // flush sends them from memory.
        return [...known, ...buffer.keys()].sort()
      })
    },

    async read(keys) {
      const fromStorage = keys.filter((key) => !buffer.has(key))
      const values = fromStorage.length > 0 ? await storage.getMany(fromStorage) : []
      const byKey = new Map(fromStorage.map((key, i) => [key, values[i]]))
      const events: StoredEvent[] = []
      const corrupt: string[] = []
      for (const key of keys) {
        const value = buffer.get(key) ?? byKey.get(key)
        if (value === undefined) known.delete(key)
        else if (isStoredEvent(value)) events.push({ key, event: value })
        else corrupt.push(key)
      }
      return { events, corrupt }
    },

    remove(keys) {
      if (keys.length === 0) return Promise.resolve()
      return serial(async () => {
        for (const key of keys) {
          buffer.delete(key)
          known.delete(key)
        }
        options.onChange()
        await storage.del(keys)
      })
    },

    size: () => known.size + buffer.size,

    stored: () => known.size,
  }
}
