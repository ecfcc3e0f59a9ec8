// Delivery: the part of the event pipeline that is loaded on demand (the queue itself, eventStore.ts,
// loads up front). It decides when a pass may go (backoff, Retry-After, offline, another tab
// sending), runs one pass at a time (flusher.ts) under the cross-tab lock (flushLock.ts), and turns
// what a pass ended with into the next step: a backoff reset, a retry, or a rest.
// Like all of this chunk, it imports only types from up-front code; the platform comes in `kit` (platform/kit.ts).
import type { HoldfastError } from '../../platform/errors'
import type { PlatformKit } from '../../platform/kit'
import type { Trigger as SchedulerTrigger } from '../../platform/scheduler'
import type { EventCounts, EventQueueOptions, Trigger } from '../eventQueue'
import type { EventStore } from '../eventStore'
import { isRefusal, normalizeUrl } from './eventTransport'
import { createFlusher, type PassOptions, type PassResult } from './flusher'
import { createFlushLock } from './flushLock'
import { createStoreReader } from './storeReader'

/** What the queue hands delivery when it loads: the client's environment, as the queue got it, and the queue's own parts. */
export interface DeliveryOptions extends Omit<EventQueueOptions, 'onStats'> {
  /** The platform pieces delivery works with, from the up-front code. */
  kit: PlatformKit
  store: EventStore
  batchSize: number
  flushIntervalMs: number
  /** The queue's counts, moved here and told through `report`. */
  counts: EventCounts
  report: () => void
  /** True once the client is closing: only the closing pass may run. */
  closed: () => boolean
}

/** The loaded delivery of one queue. */
export interface Delivery {
  /** Starts the interval and the `online` listener (the client started). Idempotent. */
  start(): void
  /** Runs a pass if `kind` may go now; resolves when it ended. Never rejects. */
  trigger(kind: Trigger, deadline?: number): Promise<void>
  /** Stops the interval, the retry timer and the `online` listener (closing); explicit passes still run. */
  stop(): void
  /** Aborts requests in flight (close ran out of time). */
  abort(): void
}

/**
 * How the shared scheduler sees each trigger: `flush()` and `close()` are explicit (they skip
 * backoff, not a server's Retry-After); everything else is automatic and waits for backoff.
 */
const AS: Record<Trigger, SchedulerTrigger> = {
  flush: 'explicit',
  close: 'explicit',
  retry: 'retry',
  online: 'online',
  interval: 'poll',
  start: 'poll',
  batch: 'poll',
  hidden: 'poll',
}

/** Creates the delivery of one queue. */
export function createDelivery(config: DeliveryOptions): Delivery {
  const { clock, logger, store, batchSize, options, environment, kit } = config
  // Said here, not when the queue is made: this chunk loads at start() (or with the first send),
  // and nothing before it could use the URL. The events are stored all the same.
  if (typeof options.url !== 'string' || options.url === '') logger.error('events.url is missing: events are kept, and cannot be sent until it is set')
  // Loaded: the failed load that `lastError` may name (eventQueue.ts) is over.
  delete config.counts.lastError
  config.report()
  const stopAll = new AbortController()
  // The one scheduler of the client's platform: the same backoff, Retry-After and offline rules
  // as flag sync. Its poll is the flush interval; its `online` listener resumes what waited.
  const scheduler = kit.createScheduler({
    clock,
    environment,
    random: config.random,
    backoff: options.backoff,
    pollMs: config.flushIntervalMs,
    run: (kind) => void trigger(kind === 'retry' || kind === 'online' ? kind : 'interval'),
  })
  /**
   * When a pass last found another tab flushing: automatic triggers rest a moment (up to a second)
   * instead of spinning. Either way from it: after the clock jumped back an hour, that moment does
   * not last the hour (every full batch, interval and hidden page skipped until the clock caught up).
   */
  let busyAt = -Infinity
  /**
   * This tab's failures in a row (its scheduler's backoff step), and the origin's as this tab last
   * read it in the stored wait: a tab on a lower step than another tab's last failure takes that
   * step up first, so N tabs on a failing receiver back off as one (see `scheduleRetry`).
   */
  let step = 0
  let seen = 0
  let running: Promise<void> | undefined
  /** The refusal last logged as an error, so a wrong URL is shouted once, not every backoff. */
  let refusedStatus: number | undefined

  const url = normalizeUrl(typeof options.url === 'string' ? options.url : '')
  /**
   * Shared by the tabs of a storage name that send to this URL: when the last failure's wait ends
   * (see `scheduleRetry`). Per URL: a page sent elsewhere (the URL was fixed) is not held by it.
   */
  const waitKey = 'holdfast:events-wait:' + url
  const reader = createStoreReader(store, config.storage, clock)
  /** This delivery, in the lock's lease and the origin's wait. */
  const owner = kit.uuid()
  const lock = createFlushLock({
    name: `holdfast:events:${config.storageName}`,
    storage: config.storage,
    clock,
    owner,
    leaseMs: 2 * config.requestTimeoutMs + 5000,
  })
  /** Removes the back/forward cache listeners (see `FlushLock.away`). */
  let stopAway: (() => void) | undefined
  const flusher = createFlusher({
    store: reader,
    lock,
    batchSize,
    url,
    fetch: config.fetch,
    headers: config.headers,
    requestTimeoutMs: config.requestTimeoutMs,
    clock,
    logger,
    signal: stopAll.signal,
    counts: config.counts,
    report: config.report,
    kit,
  })

  function trigger(kind: Trigger, deadline = Infinity): Promise<void> {
    // At start, what earlier pages left is counted, and sent at once if there is any; this page's
    // own events wait for the usual triggers (a hidden page must still send them with keepalive),
    // unless they fill a batch: logged before start() (a child's mount effect runs before the
    // provider's), the batchSize trigger found delivery not started and sent nothing.
    // So on an interval with nothing of this page's queued: another tab may have died with events
    // queued (killed, crashed), and this one may be the only one left to send them.
    if (kind === 'start' || (kind === 'interval' && store.size() === 0))
      return reader.list().then(
        () => (store.state.others.length > 0 || store.size() >= batchSize ? run(kind, deadline) : undefined),
        (error: unknown) => logger.error('reading queued events failed', error),
      )
    return run(kind, deadline)
  }

  function run(kind: Trigger, deadline: number): Promise<void> {
    const idle = Promise.resolve()
    const closing = kind === 'close'
    if (config.closed() && !closing) return idle
    // close() sends what it can whatever the backoff; what does not make it stays for the next page.
    if (closing) scheduler.reset()
    const as = AS[kind]
    if (!scheduler.allows(as)) return idle
    if (!environment.online()) {
      // Events stay persisted. Asked as an automatic trigger, so the `online` event resumes them.
      scheduler.allows('poll')
      return idle
    }
    if (as !== 'explicit' && as !== 'retry') {
      if (Math.abs(clock.now() - busyAt) < Math.min(1000, config.flushIntervalMs)) return running ?? idle
      // A hidden page queues its keepalive pass behind a running one, which sends without keepalive.
      if (running && kind !== 'hidden') return running
    }
    const explicit = as === 'explicit'
    const pass: PassOptions = {
      keepalive: kind === 'hidden',
      waitMs: explicit ? Math.max(0, Math.min(config.requestTimeoutMs, deadline - clock.now())) : 0,
      deadline,
      // Passes queued before close() give way to its own, which is bounded. Asked under the lock,
      // before each batch: only then does a request go out and this tab's retry get used up. A
      // pass that finds another tab sending leaves this tab's backoff as it was.
      proceed: () => (scheduler.began(), !config.closed() || closing),
    }
    // One pass at a time per client: an explicit flush queues behind a running pass, whose listing
    // may predate the events logged just before the call.
    let progressed = false
    const current: Promise<void> = (running ?? idle)
      .then(async () => {
        // Asked while a pass ran (a flush() call, the page hidden): that pass's answer may have said
        // wait (a Retry-After, a backoff), which the gate above could not know yet.
        // A retry that fired while a pass ran: that pass's failure set a retry of its own.
        if (!scheduler.allows(as) || (as === 'retry' && scheduler.retryPending())) return
        // Another tab's failure holds the origin (see `scheduleRetry`): automatic passes wait as
        // when a tab is sending, and flush() and close() for a server's `Retry-After`, as they do
        // for this tab's own. A wait longer than was asked (the clock was set back) is over. This
        // tab's own is its scheduler's: its retry timer may fire a ms early by the clock. No wait is
        // longer than a day (the longest Retry-After taken): a record that says so was not written
        // by a tab (another script, a corrupt entry) and would hold the origin's events. Not read
        // for a page being hidden: a storage read started then got a page entering the
        // back/forward cache evicted (Chromium: IgnoreEventAndEvict), and it is one last request.
        const held = (pass.keepalive ? undefined : await config.storage.get(waitKey)) as [number, number, string, number, number] | undefined
        const left = held ? held[explicit ? 3 : 0] - clock.now() : 0
        // No record (gone after a tab's progress): the origin's step starts again.
        seen = Math.min(held?.[4] ?? 0, 40)
        if (left > 0 && left <= Math.min(held![1], 864e5) && held![2] !== owner) return { outcome: 'busy' } as PassResult
        return flusher.run(pass)
      })
      .then(
        (result) => {
          if (!result) return
          progressed = result.progressed
          settle(result)
        },
        (error: unknown) => logger.error('event delivery failed unexpectedly', error),
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
    const busy = result.outcome === 'busy'
    if (result.progressed) scheduler.progressed(), (step = 0), void config.storage.del([waitKey])
    if (result.outcome === 'failed' && result.error) return scheduleRetry(result.error)
    if (busy) busyAt = clock.now()
    if (result.outcome === 'done') refusedStatus = undefined
    // Everything listed is through: backoff is moot, the interval ticks on. Another tab sending
    // says nothing of the receiver: this tab's failures stand, its retry still set (a flush() that
    // found the lock busy), or, that retry used up, the interval ticks on; else tabs taking turns
    // on a failing receiver reset each other to the base delay.
    if (config.closed() || (busy && scheduler.retryPending())) return
    if (!busy) step = 0
    scheduler[busy ? 'halted' : 'succeeded']()
  }

  function scheduleRetry(failure: HoldfastError) {
    const refused = isRefusal(failure)
    const what = refused
      ? `events are kept, not sent: ${failure.message}; check events.url and the headers`
      : `sending events failed (${failure.code}): ${failure.message}`
    // After close() nothing is scheduled: what did not make it stays persisted for the next page.
    if (config.closed()) return logger.warn(`${what}; they stay queued for the next page`)
    // The origin's step, not only its wait: a tab whose last failures were fewer than the origin's
    // (another tab failed meanwhile) steps up to the next one past it. Each tab on its own step, the
    // origin's cadence drifted to the lowest tab's: it sent as soon as the stored wait ended.
    let delay
    do delay = scheduler.failed(failure)
    while (++step <= seen)
    // For every tab of the origin: each on its own backoff, N tabs would ask N times as often,
    // and a `Retry-After` one of them was given would hold that one only.
    // [end of the wait, the wait, who, end of the server's Retry-After (NaN: none), the step]
    void config.storage.set(waitKey, [clock.now() + delay, delay, owner, clock.now() + Math.min(failure.retryAfterMs!, delay), step])
    const message = `${what}; they stay queued, next try in ${delay} ms`
    if (refused && refusedStatus !== failure.httpStatus) logger.error(message)
    else logger.warn(message)
    if (refused) refusedStatus = failure.httpStatus
  }

  return {
    start: () => {
      if (config.closed()) return
      scheduler.start()
      // Frozen (a background tab, or a page in the back/forward cache), the page keeps no lock.
      stopAway ??= environment.listen({
        // A page being unloaded (`pagehide`, not kept) never sees a storage step or a lock grant
        // end: its own events go at once (`flusher.leave`), not behind a running pass (whose answer
        // never comes now), nor after the queue's write of them or the origin's stored wait (reads).
        onHidden: (event) =>
          event &&
          (event.persisted
            ? lock.away(true)
            : scheduler.allows('poll') && flusher.leave([...store.state.own.keys()])),
        onFreeze: () => lock.away(true),
        onVisible: () => lock.away(false),
        onResume: () => lock.away(false),
      })
    },
    trigger,
    stop: () => {
      scheduler.stop()
      stopAway?.()
      stopAway = undefined
    },
    abort: () => stopAll.abort(),
  }
}
