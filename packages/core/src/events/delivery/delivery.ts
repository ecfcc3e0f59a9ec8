// Delivery: the part of the event pipeline that is loaded on demand (the queue itself, eventStore.ts,
// loads up front). It decides when a pass may go (backoff, Retry-After, offline, another tab
// sending), runs one pass at a time (flusher.ts) under the cross-tab lock (flushLock.ts), and turns
// what a pass ended with into the next step: a backoff reset, a retry, or a rest.
import { createRetrier } from '../../backoff'
import { isOffline } from '../../environment'
import { HoldfastError } from '../../errors'
import type { SafeStorage } from '../../storage'
import type { Clock, EventOptions, Logger } from '../../types'
import { uuid } from '../../uuid'
import type { EventCounts, Trigger } from '../eventQueue'
import type { EventStore } from '../eventStore'
import { isRefusal, normalizeUrl } from './eventTransport'
import { createFlusher, type PassOptions, type PassResult } from './flusher'
import { createFlushLock } from './flushLock'
import { createStoreReader } from './storeReader'

/** What the queue hands delivery when it loads. */
export interface DeliveryOptions {
  store: EventStore
  options: EventOptions
  batchSize: number
  flushIntervalMs: number
  storage: SafeStorage
  /** Names the Web Lock and the lease shared by the tabs of one origin. */
  storageName: string
  fetch: typeof fetch
  headers?: Record<string, string> | (() => Record<string, string>)
  logger: Logger
  clock: Clock
  random: () => number
  requestTimeoutMs: number
  /** The queue's counts, moved here and told through `report`. */
  counts: EventCounts
  report: () => void
  /** True once the client is closing: only the closing pass may run. */
  closed: () => boolean
}

/** The loaded delivery of one queue. */
export interface Delivery {
  /** Runs a pass if `kind` may go now; resolves when it ended. Never rejects. */
  trigger(kind: Trigger, deadline?: number): Promise<void>
  /** Aborts requests in flight and cancels the scheduled retry (close ran out of time). */
  stop(): void
}

/** Triggers that wait for a scheduled retry rather than run before it. Only `flush()` and `close()` do not. */
const AUTOMATIC: ReadonlySet<Trigger> = new Set(['start', 'interval', 'batch', 'online', 'hidden'])

/** Creates the delivery of one queue. */
export function createDelivery(config: DeliveryOptions): Delivery {
  const { clock, logger, store, batchSize, options } = config
  const stopAll = new AbortController()
  const baseMs = options.backoff?.baseMs ?? 1000
  const retrier = createRetrier({ clock, random: config.random, backoff: options.backoff })
  /** After finding another tab flushing, automatic triggers rest a moment instead of spinning. */
  let busyUntil = 0
  let running: Promise<void> | undefined
  /** The refusal last logged as an error, so a wrong URL is shouted once, not every backoff. */
  let refusedStatus: number | undefined

  const reader = createStoreReader(store)
  const flusher = createFlusher({
    store: reader,
    lock: createFlushLock({
      name: `holdfast:events:${config.storageName}`,
      storage: config.storage,
      clock,
      owner: uuid(),
      leaseMs: 2 * config.requestTimeoutMs + 5000,
    }),
    batchSize,
    url: normalizeUrl(options.url),
    fetch: config.fetch,
    headers: config.headers,
    requestTimeoutMs: config.requestTimeoutMs,
    clock,
    logger,
    signal: stopAll.signal,
    counts: config.counts,
    report: config.report,
  })

  function trigger(kind: Trigger, deadline = Infinity): Promise<void> {
    // At start, what earlier pages left is counted, and sent at once if there is any; this page's
    // own events wait for the usual triggers (a hidden page must still send them with keepalive).
    if (kind === 'start')
      return reader.list().then(
        () => (store.state.others.length > 0 ? run(kind, deadline) : undefined),
        (error: unknown) => logger.error('[holdfast] reading queued events failed', error),
      )
    return run(kind, deadline)
  }

  function run(kind: Trigger, deadline: number): Promise<void> {
    const idle = Promise.resolve()
    const closing = kind === 'close'
    if (config.closed() && !closing) return idle
    // What did not make it stays persisted: close() sends what it can, then gives up.
    if (closing) retrier.reset()
    // A server that said "come back later" is obeyed; only the retry it set up goes earlier.
    if (kind !== 'retry' && retrier.waiting()) return idle
    // Events stay persisted; the `online` event brings the next attempt.
    if (isOffline()) return idle
    if (AUTOMATIC.has(kind)) {
      if (retrier.pending() || clock.now() < busyUntil) return running ?? idle
      // A hidden page queues its keepalive pass behind a running one, which sends without keepalive.
      if (running && kind !== 'hidden') return running
    }
    const explicit = kind === 'flush' || closing
    const pass: PassOptions = {
      keepalive: kind === 'hidden',
      waitMs: explicit ? Math.max(0, Math.min(config.requestTimeoutMs, deadline - clock.now())) : 0,
      deadline,
      // Passes queued before close() give way to its own, which is bounded.
      proceed: () => !config.closed() || closing,
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
        if (progressed && store.size() >= batchSize) void run('batch', Infinity)
      })
    running = current
    return current
  }

  /** What a pass means for the next one: backoff reset, a retry, or a rest while another tab sends. */
  function settle(result: PassResult) {
    if (result.progressed) retrier.resetAttempts()
    if (result.outcome === 'failed' && result.error) scheduleRetry(result.error)
    else if (result.outcome === 'busy') busyUntil = clock.now() + Math.min(1000, config.flushIntervalMs)
    // Everything listed is through: whatever backoff was pending is moot.
    else if (result.outcome === 'done') {
      retrier.reset()
      refusedStatus = undefined
    }
  }

  function scheduleRetry(failure: HoldfastError) {
    const refused = isRefusal(failure)
    const what = refused
      ? `[holdfast] events are kept, not sent: ${failure.message}; check events.url and the headers`
      : `[holdfast] sending events failed (${failure.code}): ${failure.message}`
    // After close() nothing is scheduled: what did not make it stays persisted for the next page.
    if (config.closed()) return logger.warn(`${what}; they stay queued for the next page`)
    // A server answering `Retry-After: 0` (or a past date) must not get a tight loop.
    const error = failure.retryAfterMs !== undefined && failure.retryAfterMs < baseMs ? withRetryAfter(failure, baseMs) : failure
    const delay = retrier.schedule(error, () => void run('retry', Infinity))
    const message = `${what}; they stay queued, next try in ${delay} ms`
    if (refused && refusedStatus !== failure.httpStatus) logger.error(message)
    else logger.warn(message)
    if (refused) refusedStatus = failure.httpStatus
  }

  return {
    trigger,
    stop() {
      retrier.reset()
      stopAll.abort()
    },
  }
}

function withRetryAfter(error: HoldfastError, retryAfterMs: number): HoldfastError {
  return new HoldfastError(error.code, error.message, { httpStatus: error.httpStatus, retryAfterMs })
}
