// The event pipeline (CONTRACT §6): events are persisted as they are logged (eventStore.ts), sent
// in batches by one tab at a time (flushLock.ts), and leave storage only after the receiver
// answered 2xx, or when they can never be delivered (a permanent 4xx, a lone event still too large,
// the `maxQueued` bound), which is counted in `dropped`. Transient failures back off like flag
// fetches; nothing is attempted while the browser says it is offline.
import { createRetrier } from './backoff'
import { isOffline, watchEnvironment } from './environment'
import type { HoldfastError } from './errors'
import { MAX_QUEUED, positive, within, type HeldEvent } from './eventBasics'
import { createEventStore } from './eventStore'
import { createFlushLock } from './flushLock'
import { createFlusher, type PassOptions, type PassResult } from './flusher'
import type { SafeStorage } from './storage'
import type { Clock, EventOptions, EventStats, HoldfastEvent, Logger } from './types'
import { uuid } from './uuid'

export interface EventQueueOptions {
  options: EventOptions
  storage: SafeStorage
  /** Names the Web Lock and keys shared by the tabs of one origin. */
  storageName: string
  fetch: typeof fetch
  headers?: Record<string, string> | (() => Record<string, string>)
  logger: Logger
  clock: Clock
  random: () => number
  requestTimeoutMs: number
  /** Called whenever the counts move. Must not throw (the client's store shields its listeners). */
  onStats: (stats: EventStats) => void
  /** Events the stand-in already dropped under `maxQueued`, so the count carries on. */
  dropped?: number
}

export interface EventQueue {
  /** Attaches timers and listeners and picks up events earlier pages left. Idempotent. */
  start(): void
  enqueue(event: HoldfastEvent): void
  /** Sends what is queued now (this tab's and other tabs' events); never rejects. */
  flush(): Promise<void>
  stats(): EventStats
  /** Flushes (bounded by `requestTimeoutMs`), then stops timers and listeners. */
  close(): Promise<void>
}

/** The loaded pipeline, which also takes over what its stand-in held (lazyEventQueue.ts). */
export interface EventPipeline extends EventQueue {
  /** Takes over the events logged before the pipeline loaded; those not in storage yet are written at once. */
  adopt(held: HeldEvent[]): void
}

type Trigger = 'start' | 'interval' | 'batch' | 'retry' | 'online' | 'hidden' | 'flush' | 'close'

const AUTOMATIC: ReadonlySet<Trigger> = new Set(['start', 'interval', 'batch'])

export function createEventQueue(config: EventQueueOptions): EventPipeline {
  const { options, clock, logger } = config
  const batchSize = Math.ceil(positive(options.batchSize, 100))
  const flushIntervalMs = positive(options.flushIntervalMs, 10_000)
  const counts = { sent: 0, dropped: config.dropped ?? 0, retries: 0 }
  /** Aborts requests still in flight when `close()` runs out of time. */
  const stopAll = new AbortController()

  let started = false
  let closed = false
  let closePromise: Promise<void> | undefined
  let stopEnvironment: (() => void) | undefined
  let intervalTimer: unknown
  const retrier = createRetrier({ clock, random: config.random, backoff: options.backoff })
  /** After finding another tab flushing, automatic triggers rest a moment instead of spinning. */
  let busyUntil = 0
  let running: Promise<void> | undefined
  let lastReported = ''

  const stats = (): EventStats => ({ queued: store.size(), ...counts })
  function report() {
    const next = stats()
    const key = `${next.queued}/${next.sent}/${next.dropped}/${next.retries}`
    if (key === lastReported) return
    lastReported = key
    config.onStats(next)
  }

  const store = createEventStore({
    storage: config.storage,
    clock,
    logger,
    maxQueued: positive(options.maxQueued, MAX_QUEUED),
    onDrop: (count) => {
      counts.dropped += count
      report()
    },
    onChange: report,
  })
  const flusher = createFlusher({
    store,
    lock: createFlushLock({
      name: `holdfast:events:${config.storageName}`,
      storage: config.storage,
      clock,
      owner: uuid(),
      leaseMs: 2 * config.requestTimeoutMs + 5000,
    }),
    batchSize,
    url: options.url,
    fetch: config.fetch,
    headers: config.headers,
    requestTimeoutMs: config.requestTimeoutMs,
    clock,
    logger,
    signal: stopAll.signal,
    counts,
    report,
  })

  // --- when to send ------------------------------------------------------------------------------
  function trigger(kind: Trigger, deadline = Infinity): Promise<void> {
    const idle = Promise.resolve()
    if (closed && kind !== 'close') return idle
    // A server that said "come back later" is obeyed; only the retry it set up goes earlier.
    if (kind !== 'retry' && retrier.waiting()) return idle
    // Events stay persisted; the `online` event brings the next attempt.
    if (isOffline()) return idle
    if (AUTOMATIC.has(kind) && (running || retrier.pending() || clock.now() < busyUntil)) return running ?? idle
    const explicit = kind === 'flush' || kind === 'close'
    const pass: PassOptions = {
      keepalive: kind === 'hidden',
      waitMs: explicit ? Math.max(0, Math.min(config.requestTimeoutMs, deadline - clock.now())) : 0,
      deadline,
      // Passes queued before close() give way to its own, which is bounded.
      proceed: () => !closed || kind === 'close',
    }
    // One pass at a time per client: an explicit flush queues behind a running pass, whose listing
    // may predate the events logged just before the call.
    let progressed = false
    const current: Promise<void> = (running ?? idle)
      .then(() => flusher.run(pass))
      .then(
        (result) => {
          progressed = result.progressed
          settle(result)
        },
        (error: unknown) => logger.error('[holdfast] event delivery failed unexpectedly', error),
      )
      .finally(() => {
        if (running !== current) return
        running = undefined
        if (progressed && store.size() >= batchSize) void trigger('batch')
      })
    running = current
    return current
  }

  function scheduleInterval() {
    if (closed) return
    intervalTimer = clock.setTimeout(() => {
      void trigger('interval')
      scheduleInterval()
    }, flushIntervalMs)
  }

  /** What a pass means for the next one: backoff reset, a retry, or a rest while another tab sends. */
  function settle(result: PassResult) {
    if (result.progressed) retrier.resetAttempts()
    if (result.outcome === 'failed' && result.error) scheduleRetry(result.error)
    else if (result.outcome === 'busy') busyUntil = clock.now() + Math.min(1000, flushIntervalMs)
    // Everything listed is through: whatever backoff was pending is moot.
    else if (result.outcome === 'done') retrier.reset()
  }

  function scheduleRetry(error: HoldfastError) {
    // After close() nothing is scheduled: what did not make it stays persisted for the next page.
    if (closed) return logger.warn(`[holdfast] sending events failed (${error.code}): ${error.message}; they stay queued for the next page`)
    const delay = retrier.schedule(error, () => void trigger('retry'))
    logger.warn(`[holdfast] sending events failed (${error.code}): ${error.message}; they stay queued, next try in ${delay} ms`)
  }

  /** After events joined the store: counts told, written now if asked, a full batch sent. */
  function added(writeNow: boolean) {
    report()
    if (writeNow) void store.persist()
    if (!closed && started && store.size() >= batchSize) void trigger('batch')
  }

  return {
    start() {
      if (started || closed) return
      started = true
      stopEnvironment = watchEnvironment({
        onHidden: () => {
          // The page may be gone in a moment: write what is buffered now, then try to send it.
          void store.persist()
          void trigger('hidden')
        },
        onOnline: () => void trigger('online'),
      })
      scheduleInterval()
      // Earlier pages or other tabs may have left events, and the stand-in may have written some
      // while the pipeline loaded: count them now and send them soon. Events only in memory (not
      // written yet) wait for the usual triggers.
      void store.list().then(
        () => void (store.stored() > 0 && trigger('start')),
        (error: unknown) => logger.error('[holdfast] reading queued events failed', error),
      )
    },

    enqueue(event) {
      store.add(event)
      added(closed)
    },

    adopt(held) {
      store.adopt(held)
      added(held.some((h) => !h.written))
    },

    flush: () => store.persist().then(() => trigger('flush')),

    stats,

    close() {
      closePromise ??= (async () => {
        closed = true
        stopEnvironment?.()
        stopEnvironment = undefined
        if (intervalTimer !== undefined) clock.clearTimeout(intervalTimer)
        intervalTimer = undefined
        retrier.reset()
        const deadline = clock.now() + config.requestTimeoutMs
        await within(clock, config.requestTimeoutMs, store.persist().then(() => trigger('close', deadline)))
        // What did not make it stays persisted for the next page.
        stopAll.abort()
      })()
      return closePromise
    },
  }
}
