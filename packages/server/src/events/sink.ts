// The events sink: de-duplicates by id within a bounded window and appends what is new to a
// durable JSON Lines file (or hands it to the forwarding spool). No event history is kept in
// memory beyond a small ring of the most recent events for tests and the demo.
import type { ServerLogger } from '../logger'
import { createDedupeWindow, DEFAULT_DEDUPE_MAX_IDS, DEFAULT_DEDUPE_WINDOW_MS, type DedupeWindowOptions } from './dedupeWindow'
import type { EventStore } from './eventStore'
import { nodeFileSystem, type EventFileSystem } from './fileSystem'
import type { ReceivedEvent } from './schema'
import { stallOf, StoreStalledError, type StoreStall } from './storeStall'
import { readLinesBackward } from './tailReader'

/** Default {@link EventSinkOptions.writeTimeoutMs}: 4 s, under the browser client's 5 s request timeout. */
export const DEFAULT_WRITE_TIMEOUT_MS = 4000

/** The timers of the write bound: `now` (epoch ms), `setTimeout`, `clearTimeout`. */
export interface SinkClock {
  /** The current time in epoch milliseconds; the default ({@link realClock}) does not step with the system clock. */
  now(): number
  /** Calls `callback` after `ms` milliseconds; returns a handle for `clearTimeout`. */
  setTimeout(callback: () => void, ms: number): unknown
  /** Cancels a timer `setTimeout` returned; an unknown or fired handle is ignored. */
  clearTimeout(handle: unknown): void
}

/** Default {@link EventSinkOptions.recent}: the 1,000 most recent events are kept for `events()`. */
export const DEFAULT_RECENT_EVENTS = 1000

/** What a batch did: new events stored, and events whose `id` was already seen. */
export interface AcceptResult {
  /** Events new to the sink, now stored. */
  accepted: number
  /** Events whose `id` the sink had already seen: not stored again (delivery is at-least-once). */
  duplicates: number
}

/** Options of {@link createEventSink}. */
export interface EventSinkOptions {
  /** Where new events go. Default: nowhere (memory only: dedupe and `recent()` still work). */
  store?: EventStore
  /** The bounded de-duplication window. Defaults: 100,000 ids, 24 hours. */
  dedupe?: DedupeWindowOptions
  /** How many of the most recent events `recent()` returns. Default {@link DEFAULT_RECENT_EVENTS}. */
  recent?: number
  /** Default {@link nodeFileSystem}: used to read ids back from `store.files()`. */
  fs?: EventFileSystem
  /** Told about each batch's outcome (metrics); also of a batch whose write landed after its 503. */
  onBatch?: (result: AcceptResult) => void
  /**
   * How long a batch waits for the store (its write and fsync, and the writes queued before it)
   * before `accept` rejects with {@link StoreStalledError}; while that write stays hung, later
   * batches are refused at once. Default {@link DEFAULT_WRITE_TIMEOUT_MS}.
   */
  writeTimeoutMs?: number
  /** The clock of `writeTimeoutMs` (and of the store's `busy()`). Default {@link realClock}. */
  clock?: SinkClock
  log: ServerLogger
}

/** Stores events at most once per `id` within the de-duplication window. */
export interface EventSink {
  /** Reads ids (and the recent events) back from the store's files, newest first, streaming. */
  open(): Promise<void>
  /** Stores the new events of a batch; resolves once they are durable. Rejects if they are not. */
  accept(events: ReceivedEvent[]): Promise<AcceptResult>
  /** The most recent accepted events, oldest first (at most `recent`). */
  recent(): ReceivedEvent[]
  /** Ids remembered for de-duplication now. */
  rememberedIds(): number
  /** The store's write in flight when it has run past `writeTimeoutMs`, else undefined. */
  stalled(): StoreStall | undefined
  /** Forgets every event and empties the store. */
  reset(): Promise<void>
  /** Waits for pending writes and closes the store. */
  close(): Promise<void>
}

/** Creates an {@link EventSink}. */
export function createEventSink(options: EventSinkOptions): EventSink {
  const { store, log } = options
  const fs = options.fs ?? nodeFileSystem
  // The window's clock: epoch ms that never step (see `realClock`), read back against the files'
  // times at start. Timeline this guards against: the system clock is stepped two days forward
  // for a moment (a bad NTP answer, a VM's clock set wrong) and back; on Date.now, the one batch
  // taken meanwhile found every id older than the window and forgot them all, and client retries
  // of events stored seconds before were stored again.
  const now = options.dedupe?.now ?? realClock.now
  const window = createDedupeWindow({ ...options.dedupe, now })
  const windowMs = options.dedupe?.windowMs ?? DEFAULT_DEDUPE_WINDOW_MS
  const maxIds = options.dedupe?.maxIds ?? DEFAULT_DEDUPE_MAX_IDS
  const recentLimit = Math.max(0, options.recent ?? DEFAULT_RECENT_EVENTS)
  let recent: ReceivedEvent[] = []
  const clock = options.clock ?? realClock
  const bound = Math.max(1, options.writeTimeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS)
  // The `since` of the stall the log told of (once per stall), until the store answers again.
  let announced: StoreStall | undefined

  const stalled = () => stallOf(store?.busy?.(), clock.now(), bound)
  const announce = (stall: StoreStall) => {
    if (announced?.since === stall.since) return
    announced = stall
    log.error(`events: ${new StoreStalledError(stall).message}; events requests are answered 503 (Retry-After) until it returns`)
  }
  const recovered = () => {
    if (!announced || stalled()) return
    log.info(`events: the write to ${announced.path} returned after ${Math.round((clock.now() - announced.since) / 1000)} s (a slow disk, not a hung one); events are taken again`)
    announced = undefined
  }

  const remember = (events: ReceivedEvent[]) => {
    if (recentLimit === 0) return
    recent.push(...events)
    if (recent.length > recentLimit * 2) recent = recent.slice(-recentLimit)
  }

  // Ids whose write is still on its way to disk, with that write.
  const writing = new Map<string, Promise<void>>()

  // Stores the new events of a batch; resolves with how many were new once they are durable, and
  // once every event it calls a duplicate is durable too. Timeline this guards against: a client
  // posts a batch, its connection drops while the write is pending, and it retries at once; the
  // retry finds the ids claimed. Answered "duplicates" at once, the client forgets the batch, and
  // if the first write then fails (its ids released, its 500 sent to nobody) the events are lost.
  // So the retry waits for that write, and stores the events itself if it failed.
  const storeNew = async (events: ReceivedEvent[]): Promise<number> => {
    const fresh: ReceivedEvent[] = []
    const pending: Array<[ReceivedEvent, Promise<void>]> = []
    // Claim ids synchronously, before any await: two concurrent retries of one batch must not
    // both count as new.
    for (const event of events) {
      if (window.claim(event.id)) fresh.push(event)
      else {
        const write = writing.get(event.id)
        if (write) pending.push([event, write])
      }
    }
    if (fresh.length > 0 && store) {
      const write = store.append(fresh)
      for (const event of fresh) writing.set(event.id, write)
      try {
        await write
      } catch (error) {
        // Unclaim, so the client's retry of this batch is stored rather than called a duplicate.
        for (const event of fresh) window.release(event.id)
        log.error(`events: could not store a batch of ${fresh.length}: ${(error as Error).message}`)
        throw error
      } finally {
        for (const event of fresh) if (writing.get(event.id) === write) writing.delete(event.id)
      }
    }
    remember(fresh)
    const lost: ReceivedEvent[] = []
    for (const [event, write] of pending) if (!(await write.then(() => true, () => false))) lost.push(event)
    return fresh.length + (lost.length > 0 ? await storeNew(lost) : 0)
  }

  return {
    async open() {
      if (!store) return
      await store.open()
      // Newest first until the window is full (by count or by time); then restore oldest first.
      const ids: Array<[string, number]> = []
      const events: ReceivedEvent[] = []
      let unreadable = 0
      const unread = new Set<string>()
      const read = new Set<string>()
      const files = await store.files()
      scan: for (const file of files) {
        const stat = await fs.stat(file)
        // A file's events were all accepted at or before its last modification.
        if (!stat || stat.mtimeMs <= now() - windowMs) break
        read.add(file)
        try {
          for await (const line of readLinesBackward(fs, file)) {
            const event = line && store.readBack(line)
            if (!event) {
              unreadable++
              continue
            }
            ids.push([event.id, stat.mtimeMs])
            if (events.length < recentLimit) events.push(event)
            if (ids.length >= maxIds) break scan
          }
        } catch (error) {
          // An older file that cannot be read (a directory or a file of root's with a rotated name)
          // costs the de-duplication of its ids, not the start. The current file was opened by now.
          if (file === files[0]) throw error
          unread.add(file)
          read.delete(file)
          log.warn(`events: cannot read ids back from ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); skipped`)
        }
      }
      for (let i = ids.length - 1; i >= 0; i--) window.restore(ids[i][0], ids[i][1])
      recent = events.reverse()
      if (unreadable > 0) log.warn(`events: skipped ${unreadable} unreadable line(s) while reading ids back`)
      await store.readBackDone?.(unread, read)
    },

    // Timeline this guards against: the mount under the events file dies after the start; a
    // batch's fsync never returns. Before, its request waited for ever, and so did every later
    // one (queued behind it): each browser's flush hung until its own timeout, and nothing said
    // why. Now the request gives up after the bound (its ids stay claimed by the write, which
    // settles them when it returns: stored, they are duplicates of the client's retry; failed,
    // they are released), and while the write is hung the next batches are refused at once.
    async accept(events) {
      const stall = stalled()
      if (stall) {
        announce(stall)
        throw new StoreStalledError(stall)
      }
      recovered()
      const work = storeNew(events)
      let timer: unknown
      const late = store && new Promise<'late'>((resolve) => (timer = clock.setTimeout(() => resolve('late'), bound)))
      let accepted: number | 'late'
      try {
        accepted = late ? await Promise.race([work, late]) : await work
      } finally {
        if (timer !== undefined) clock.clearTimeout(timer)
      }
      if (accepted === 'late') {
        const busy = store?.busy?.()
        const stall = { since: busy?.since ?? clock.now() - bound, path: busy?.path ?? 'the events store', seconds: Math.floor(bound / 1000) }
        announce(stall)
        // Stored after all: counted as accepted (the client's retry is then a duplicate).
        work.then((stored) => {
          if (stored > 0) options.onBatch?.({ accepted: stored, duplicates: 0 })
          recovered()
        }, () => recovered())
        throw new StoreStalledError(stall)
      }
      const result = { accepted, duplicates: events.length - accepted }
      options.onBatch?.(result)
      return result
    },

    recent: () => (recent.length > recentLimit ? recent.slice(-recentLimit) : recent.slice()),
    rememberedIds: () => window.size(),
    stalled,

    async reset() {
      window.clear()
      recent = []
      await store?.reset()
    },

    close: async () => store?.close(),
  }
}

/**
 * The default {@link SinkClock}: epoch ms that never step (the process's time origin plus a
 * monotonic count), so a wall clock set an hour forward does not make a write under way for
 * milliseconds look stalled (every batch refused), nor one set back hide a stall.
 */
export const realClock: SinkClock = {
  now: () => performance.timeOrigin + performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
}
