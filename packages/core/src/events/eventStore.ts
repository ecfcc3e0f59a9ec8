// The persisted event queue. Every event gets its own storage entry (eventKey.ts: keys sorted as
// strings are in log order), and every tab of the origin that opens the same database sees one
// shared queue. This file is the writing side, loaded up front; the reading side (listing, reading
// and removing what was sent) loads with delivery (delivery/storeReader.ts). An event leaves the
// queue only after a 2xx, a permanent rejection, or through the `maxQueued` bound.
//
// This page also keeps its own events in memory until they leave the queue. Storage can fail
// mid-page (quota, a full disk): the storage then moves to memory and can no longer read what it
// wrote before, but this copy still can, so this page sends every event it logged and the counts
// add up. Writes happen when the task that logged the events ends, all pending ones in one
// `setMany`: never on a timer, which a hidden tab runs a second late, or a minute (Chrome, hidden
// over 5 minutes, chained timers: an app's setInterval logging), leaving an event in memory only
// for a crash to take long past the promised 100 ms. Storage mutations
// (writes, deletions, listings) run one after another, so a deletion can never be overtaken by an
// older write of the same key and bring back an event that was already sent.
import type { SafeStorage } from '../platform/storage'
import type { Clock, HoldfastEvent, Logger } from '../types'
import { EVENT_PREFIX, nextEventKey, type KeyClock } from './eventKey'
import { prepareEvent } from './prepareEvent'

/** The queue of persisted events shared by the tabs of one origin and storage name: the writing side, loaded up front. */
export interface EventStore {
  /** Copies and buffers an event (written once the current task ends); false when it was refused (cannot be serialised). */
  add(event: HoldfastEvent): boolean
  /** Writes whatever is buffered now; resolves once done. Never rejects. */
  persist(): Promise<void>
  /** Events waiting: this page's plus those of other pages seen at the last listing. */
  size(): number
  /** What the reading side (delivery/storeReader.ts, loaded with delivery) works on. */
  state: StoreState
}

/** The store's state, shared with its reading side. */
export interface StoreState {
  /** Where the last key stands (eventKey.ts). */
  keys: KeyClock
  /**
   * What every event's key starts with (eventKey.ts). Handed over here because the reading side
   * loads on demand and must not import eventKey.ts, which the up-front code uses (see platform/kit.ts).
   */
  prefix: string
  /** This page's events still queued, in log order (which is also key order). */
  own: Map<string, Own>
  /** Keys of other pages' events at the last listing, sorted. */
  others: string[]
  /** Keys being deleted from storage: a listing that overlaps the deletion must not revive them. */
  deleting: Set<string>
  /** Runs storage steps in order; a failing step never breaks the chain. */
  serial<T>(step: () => Promise<T>): Promise<T>
  /** Deletes keys from storage, after whatever storage step is under way. */
  forget(keys: string[]): Promise<void>
  /** Enforces `maxQueued`. */
  trim(): void
  /** `size()` moved. */
  changed(): void
}

/** One of this page's events: `written` names the storage that holds it, if any does yet. */
export interface Own {
  event: HoldfastEvent
  written?: 'indexeddb' | 'memory'
}

/** Options of `createEventStore`. */
export interface EventStoreOptions {
  storage: SafeStorage
  clock: Clock
  logger: Logger
  /** The queue bound; past it the oldest (in log order) go. */
  maxQueued: number
  /** Events pushed out by the bound, or refused by `add`. */
  onDrop: (count: number) => void
  /** `size()` moved. */
  onChange: () => void
}

/** Creates the store of one queue; nothing is read or written until an event is added. */
export function createEventStore(options: EventStoreOptions): EventStore {
  const { storage, clock, maxQueued, logger } = options
  /** A write is asked for the end of this task: the events logged until then share it. */
  let asked = false
  let ops: Promise<unknown> = Promise.resolve()

  const state: StoreState = {
    keys: { tick: 0, seq: 0 },
    prefix: EVENT_PREFIX,
    own: new Map(),
    others: [],
    deleting: new Set(),
    serial(step) {
      const next = ops.then(step)
      ops = next.catch(() => undefined)
      return next
    },
    forget(list) {
      for (const key of list) state.deleting.add(key)
      return state.serial(() => storage.del(list)).finally(() => {
        for (const key of list) state.deleting.delete(key)
      })
    },
    trim,
    changed: options.onChange,
  }
  const { own } = state
  const size = () => own.size + state.others.length
  /** This page's events not written yet, in log order (a write takes them all). */
  let unwritten: [string, Own][] = []
  /** A full queue is reported once, not on every event that pushes another out. */
  let warnedFull = false

  /** The oldest keys go, from memory at once and from storage soon after. */
  function trim() {
    let over = size() - maxQueued
    if (over < 0) warnedFull = false
    if (over <= 0) return
    const count = over
    const stored: string[] = []
    const { others } = state
    while (over-- > 0) {
      const mine = own.keys().next().value as string | undefined
      // Both lists are sorted: the oldest is the smaller of their heads.
      const fromOthers = others.length > 0 && (mine === undefined || others[0] < mine)
      const key = fromOthers ? (others.shift() as string) : (mine as string)
      if (fromOthers || own.get(key)?.written) stored.push(key)
      own.delete(key)
    }
    if (!warnedFull) logger.warn(`event queue full (maxQueued ${maxQueued}): dropping the oldest, counted as dropped`)
    warnedFull = true
    options.onDrop(count)
    if (stored.length > 0) void state.forget(stored)
  }

  async function write() {
    // Those dropped by the bound meanwhile are not written at all.
    const batch = unwritten.filter(([key, item]) => own.get(key) === item)
    unwritten = []
    if (batch.length === 0) return
    const entries = batch.map(([key, item]): [string, unknown] => [key, item.event])
    // A failed write moves SafeStorage to memory, where the second one lands; if even that fails
    // they stay unwritten (but queued, in memory) and the next write tries again.
    if (!((await storage.setMany(entries)) || (await storage.setMany(entries)))) {
      unwritten = batch.concat(unwritten)
      return
    }
    const kind = storage.kind()
    const gone: string[] = []
    for (const [key, item] of batch) {
      if (own.get(key) === item) item.written = kind
      else gone.push(key)
    }
    // Pushed out by the bound, or sent, while this write was under way: it must not linger.
    if (gone.length > 0) await storage.del(gone)
  }

  function persist(): Promise<void> {
    asked = false
    return state.serial(write).then(options.onChange, (error: unknown) => logger.error('writing events failed', error))
  }

  return {
    add(event) {
      const copy = prepareEvent(event, logger)
      if (!copy) {
        options.onDrop(1)
        return false
      }
      const key = nextEventKey(state.keys, clock.now(), copy.id)
      const item: Own = { event: copy }
      own.set(key, item)
      unwritten.push([key, item])
      trim()
      // Writes run one after another: while one is under way, what is logged meanwhile waits for
      // the next, so a steady stream of events is a write at a time, not a write per event.
      if (!asked) (asked = true), queueMicrotask(persist)
      return true
    },
    persist,
    size,
    state,
  }
}
