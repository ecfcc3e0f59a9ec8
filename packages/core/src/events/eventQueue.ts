// The event queue a client holds. It loads with the client: events are copied, counted, bounded
// and persisted (eventStore.ts) from the first `logEvent`, whatever the network or the bundler
// does. Only delivery (delivery/: batching, the cross-tab lock, POST, retries) is a chunk loaded
// on demand: `start()` fetches it while the first flag request is out, and anything that needs
// to send (a full batch, the interval, `flush()`, a hidden page, `close()`) waits for it. A chunk
// that cannot be fetched costs nothing but time: the events stay in storage, `lastError` says why,
// and it is asked for again on the backoff (or by the next page).
import { platformKit } from '../platform/kit'
import type { SafeStorage } from '../platform/storage'
import type { Clock, Environment, EventOptions, EventStats, HoldfastEvent, Logger, HeadersOption } from '../types'
import type { Delivery, DeliveryOptions } from './delivery/delivery'
import { createEventStore } from './eventStore'
import { readNumber } from '../flags/options'
import { backoffDelay } from '../platform/backoff'

/** What makes delivery try to send. */
export type Trigger = 'start' | 'interval' | 'batch' | 'retry' | 'online' | 'hidden' | 'flush' | 'close'

/** The counts behind `getEventStats()`, moved by the store and by delivery. */
export type EventCounts = Omit<EventStats, 'queued'>

/** What the client hands its queue. */
export interface EventQueueOptions {
  options: EventOptions
  storage: SafeStorage
  /** Names the Web Lock and keys shared by the tabs of one origin. */
  storageName: string
  fetch: typeof fetch
  headers?: HeadersOption
  logger: Logger
  clock: Clock
  /** Online state and page events (the client's injected environment). */
  environment: Environment
  random: () => number
  requestTimeoutMs: number
  /** Called whenever the stats may have moved (equal stats included). Must not throw (the client's store shields its listeners). */
  onStats: (stats: EventStats) => void
}

/** The client's event queue. Nothing here rejects or throws. */
export interface EventQueue {
  /** Attaches the page-hide listener, fetches delivery (which runs the interval and resumes on `online`) and picks up what earlier pages left. Idempotent. */
  start(): void
  /** Copies, counts and persists an event (within 100 ms); sends a full batch. */
  enqueue(event: HoldfastEvent): void
  /** Sends what is queued now (this tab's and other tabs' events). */
  flush(): Promise<void>
  stats(): EventStats
  /** Writes what is buffered, sends what it can within `requestTimeoutMs`, stops timers and listeners. */
  close(): Promise<void>
}

/** Fetches the delivery chunk; tests pass their own to hold it back or make it fail. */
export type DeliveryLoader = () => Promise<{ createDelivery: (options: DeliveryOptions) => Delivery }>

// The chunk gets the platform in `kit` and imports only types from up-front code (platform/kit.ts says why).
const loadChunk: DeliveryLoader = () => import('./delivery/delivery')

/** Creates the queue of one client; nothing is read, written or fetched until it is used. */
export function createEventQueue(config: EventQueueOptions, loader: DeliveryLoader = loadChunk): EventQueue {
  const { options, clock, logger, requestTimeoutMs } = config
  const batchSize = Math.ceil(readNumber(options.batchSize, 100, 'events.batchSize', 1, logger))
  const flushIntervalMs = readNumber(options.flushIntervalMs, 10_000, 'events.flushIntervalMs', 100, logger)
  const counts: EventCounts = { sent: 0, dropped: 0, retries: 0, retriedRequests: 0 }
  let started = false
  let closed = false
  let closePromise: Promise<void> | undefined
  let stopEnvironment: (() => void) | undefined
  let delivery: Delivery | undefined
  let loading: Promise<Delivery | undefined> | undefined
  /** Loads of delivery that failed in a row: the backoff step of the next (see `ready`). */
  let failures = 0
  /** The timer that asks for the chunk again after a failed load; close() clears it (in Node it held the process for the backoff). */
  let reload: unknown

  // `lastError` is present only while the latest send failed (delivery deletes it on success).
  const stats = (): EventStats => ({ queued: store.size(), ...counts })
  // The client's store skips stats equal to those it holds, so a report that moved nothing costs nothing.
  const report = () => config.onStats(stats())

  const store = createEventStore({
    storage: config.storage,
    clock,
    logger,
    maxQueued: Math.ceil(readNumber(options.maxQueued, 10_000, 'events.maxQueued', 1, logger)),
    onDrop: (count) => {
      counts.dropped += count
      report()
    },
    onChange: report,
  })

  /**
   * Delivery, loaded once (a load that succeeded stays in `loading`). One that failed (offline, or a
   * deploy removed the chunk) leaves the events in storage and says why in the stats (`lastError`),
   * not in the log alone; it stays in `loading` until the backoff (the `events.backoff` of every
   * retry) ends, then the chunk is asked for again and what is queued sent. Meanwhile every trigger
   * (a full batch, flush(), a hidden page, close()) finds no delivery and the events stay stored:
   * retried by each, a page logging past a full batch asked a missing chunk once per event.
   */
  function ready(): Promise<Delivery | undefined> {
    return (loading ??= Promise.resolve()
      .then(loader)
      .then(
        (chunk) => {
          delivery = chunk.createDelivery({ ...config, kit: platformKit, store, batchSize, flushIntervalMs, counts, report, closed: () => closed })
          if (started) delivery.start()
          return delivery
        },
        (error: unknown) => {
          logger.error((counts.lastError = { code: 'NETWORK', message: 'loading event delivery failed' }).message, error)
          report()
          // No retry for a closed queue (a load that failed after close() stopped waiting for it).
          if (!closed) reload = clock.setTimeout(() => ((loading = undefined), send('start')), backoffDelay(failures++, config.random, options.backoff))
          return undefined
        },
      ))
  }

  /** Waits for `promise`, or `requestTimeoutMs` on the clock: a chunk that never comes holds nothing up. */
  async function bounded<T>(promise: Promise<T>): Promise<T | undefined> {
    let timer: unknown
    const late = new Promise<undefined>((resolve) => (timer = clock.setTimeout(() => resolve(undefined), requestTimeoutMs)))
    try {
      return await Promise.race([promise, late])
    } finally {
      clock.clearTimeout(timer)
    }
  }

  /** What the queue's own moments (a full batch, a hidden page, a retried load) ask of delivery; close() asks its own. */
  function send(kind: Trigger): void {
    if (!closed) void ready().then((d) => d?.trigger(kind))
  }

  return {
    start() {
      if (started || closed) return
      started = true
      delivery?.start()
      stopEnvironment = config.environment.listen({
        // The page may be gone in a moment: write what is buffered now, then try to send it. Not
        // on its way into the back/forward cache (`persisted`): delivery lets the page's lock go
        // then and sends nothing until it is shown again, but this listener runs before delivery's
        // hears of it, and the pass listed the queue in IndexedDB; frozen, the page never heard the
        // answer, and Chromium evicted it once another tab's write waited on that transaction.
        // (No `freeze` handler: each event is already written as the task that logged it ends,
        // before the page can be frozen, and that write commits at once: platform/storage.ts.)
        onHidden: (event) => store.persist().then(() => event?.persisted || send('hidden')),
      })
      // Earlier pages or other tabs may have left events: delivery lists (and counts) them and sends them.
      send('start')
    },

    enqueue(event) {
      if (!store.add(event)) return
      report()
      // Written by the store when this task ends, closed or not (eventStore.ts).
      if (started && store.size() >= batchSize) send('batch')
    },

    flush: () =>
      store
        .persist()
        .then(() => bounded(ready()))
        .then((d) => d?.trigger('flush')),

    stats,

    close() {
      closePromise ??= (async () => {
        closed = true
        // Listeners and timers go at once; only the bounded last pass below remains.
        stopEnvironment?.()
        delivery?.stop()
        const deadline = clock.now() + requestTimeoutMs
        await bounded(
          store.persist().then(async () => {
            // Nothing to send: nothing to load.
            if (store.size() === 0 && !delivery) return
            const d = await ready()
            await d?.trigger('close', deadline)
          }),
        )
        // What did not make it stays persisted for the next page.
        delivery?.abort()
        // The retry of a chunk that failed to load, set before close() or by the load it waited
        // for (in Node it held the process for the backoff). Fired meanwhile, it sent nothing.
        clock.clearTimeout(reload)
      })()
      return closePromise
    },
  }
}
