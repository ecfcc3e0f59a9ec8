// The one scheduler: it decides when a sender (flag sync, event delivery) may ask the server.
// Every automatic trigger — a retry, a poll, focus or visibility, the `online` event — asks
// `allows()`, so they all respect the same backoff: flapping online/offline or hidden/visible can
// never send a request early. Explicit calls (`refresh()`, `flush()`, a user switch) skip backoff
// and the offline flag but not a server's `Retry-After`. Every timer goes through the injected clock.
//
//   failure ──► backoff (notBefore = now + delay, retry timer) ──► timer fires ──► allows('retry')
//                 │ offline at that moment: waitingForOnline ──► `online` ──► allows('online')
//   success ──► attempts reset ──► poll timer (pollMs)
import { MAX_SERVER_WAIT_MS, positiveOr, retryDelay, type BackoffOptions } from './backoff'
import type { HoldfastError } from './errors'
import type { Clock, Environment } from '../types'

/**
 * Why a request would go. `explicit` is an app call (refresh, flush, a user switch, start);
 * the others are automatic and respect backoff and the offline flag.
 */
export type Trigger = 'explicit' | 'retry' | 'poll' | 'focus' | 'online'

/** Options of `createScheduler`. */
export interface SchedulerOptions {
  /** Timers and time. */
  clock: Clock
  /** Online state and focus/visibility/online events. */
  environment: Environment
  /** Called when an automatic trigger may send now; the sender then calls `began()`. */
  run: (trigger: Exclude<Trigger, 'explicit'>) => void
  /** Jitter source. Default `Math.random`. */
  random?: () => number
  /** Backoff base and cap. Default 1,000 ms doubling to 60,000 ms. */
  backoff?: BackoffOptions
  /** Poll period after a success or a non-retryable failure; 0 = no polling. Default 0. */
  pollMs?: number
  /** React to focus/visibility, at most once per this many ms since the last request; 0 = ignore focus. Default 0. */
  focusThrottleMs?: number
  /** The page is being hidden (last chance to send with keepalive); passed through from the environment. Default: none (nothing is called). */
  onHidden?: () => void
}

/** The scheduler of one sender. Nothing happens until `start()`; `stop()` clears every timer and listener. */
export interface Scheduler {
  /** Attaches the environment's listeners. Idempotent. */
  start(): void
  /** Clears timers and removes listeners; the scheduler can be started again. */
  stop(): void
  /**
   * Whether a request for `trigger` may go now. Automatic triggers wait for backoff and for
   * `online` (and remember to resume on `online`); every trigger waits for a `Retry-After`.
   */
  allows(trigger: Trigger): boolean
  /** A request is going out now: the scheduled retry and any poll are used up. */
  began(): void
  /** The request succeeded: backoff forgotten, the next poll scheduled. */
  succeeded(): void
  /** A transient failure: schedules the retry; returns its delay in ms. */
  failed(error: HoldfastError): number
  /** A failure that retrying cannot fix (401, 400): no retry, wait for the next trigger (poll, focus, an app call). */
  halted(): void
  /** Partial progress (some events went out): the next failure backs off from the start again. */
  progressed(): void
  /**
   * A new beginning (another user): attempts, backoff and timers are cleared. A server's
   * `Retry-After` is not: its timer is set again for the moment it ends.
   */
  reset(): void
  /** A retry is scheduled. */
  retryPending(): boolean
}

/** Creates the scheduler of one sender. See `Scheduler` for the rules; defaults in `SchedulerOptions`. */
export function createScheduler(options: SchedulerOptions): Scheduler {
  const { clock, environment } = options
  const random = options.random ?? Math.random
  const pollMs = positiveOr(options.pollMs, 0)
  const focusMs = positiveOr(options.focusThrottleMs, 0)

  let attempts = 0
  /** No automatic request before this time (backoff, or Retry-After). */
  let notBefore = 0
  /** No request at all before this time (a server's Retry-After). */
  let hardUntil = 0
  /** How long that wait was. */
  let held = 0
  let lastRequestAt = -Infinity
  let waitingForOnline = false
  let retryTimer: unknown
  let pollTimer: unknown
  let stopListening: (() => void) | undefined
  let started = false

  const clear = (timer: unknown) => {
    if (timer !== undefined) clock.clearTimeout(timer)
  }
  const clearRetry = () => {
    clear(retryTimer)
    retryTimer = undefined
  }
  const clearPoll = () => {
    clear(pollTimer)
    pollTimer = undefined
  }

  function fire(trigger: Exclude<Trigger, 'explicit'>) {
    if (scheduler.allows(trigger)) options.run(trigger)
  }

  /** The retry timer: when it fires, the wait is over. */
  function arm(delay: number) {
    if (started)
      retryTimer = clock.setTimeout(() => {
        retryTimer = undefined
        // The wait is over, measured by the timer: a clock that jumped back meanwhile must not
        // hold `online` or refresh() until the wall clock catches up (an hour, after an hour's jump).
        notBefore = hardUntil = 0
        fire('retry')
      }, delay)
  }

  /**
   * A server's `Retry-After` still running (after a user switch, or a pause): the retry timer is
   * set for its end, no later (a longer backoff was the previous user's), so the latest ask goes
   * then. Never longer than the wait asked for, even after the clock jumped back.
   */
  function holdOn() {
    clearRetry()
    const wait = Math.min(hardUntil - clock.now(), held)
    if (wait > 0) arm(wait)
  }

  function schedulePoll() {
    clearPoll()
    if (!started || pollMs === 0 || retryTimer !== undefined) return
    pollTimer = clock.setTimeout(() => {
      pollTimer = undefined
      // Re-armed first: a poll that is not allowed now (offline) or sends nothing still ticks on.
      schedulePoll()
      fire('poll')
    }, pollMs)
  }

  const scheduler: Scheduler = {
    start() {
      if (started) return
      started = true
      stopListening = environment.listen({
        onVisible: focusMs > 0 ? () => fire('focus') : undefined,
        onOnline: () => fire('online'),
        onHidden: options.onHidden,
      })
      holdOn()
      schedulePoll()
    },
    stop() {
      started = false
      clearRetry()
      clearPoll()
      stopListening?.()
      stopListening = undefined
    },
    allows(trigger) {
      const now = clock.now()
      if (now < hardUntil && trigger !== 'retry') return false
      if (trigger === 'explicit') return true
      if (!started) return false
      if (trigger === 'online' && !waitingForOnline) return false
      if (trigger !== 'retry' && now < notBefore) return false
      // Either way: after the clock jumped back an hour, the last request is not "in 5 s" for an hour.
      if (trigger === 'focus' && Math.abs(now - lastRequestAt) < focusMs) return false
      if (!environment.online()) {
        waitingForOnline = true
        return false
      }
      return true
    },
    began() {
      lastRequestAt = clock.now()
      waitingForOnline = false
      hardUntil = 0
      clearRetry()
      clearPoll()
    },
    succeeded() {
      attempts = 0
      notBefore = 0
      hardUntil = 0
      clearRetry()
      schedulePoll()
    },
    failed(error) {
      clearRetry()
      clearPoll()
      const delay = retryDelay(error, attempts, random, options.backoff)
      attempts++
      notBefore = clock.now() + delay
      // Only the server's wait (raised to the base delay and capped, as for retries) binds app calls:
      // a longer backoff it came with does not hold refresh() too.
      if (error.retryAfterMs !== undefined) hardUntil = clock.now() + (held = Math.max(Math.min(error.retryAfterMs, MAX_SERVER_WAIT_MS), positiveOr(options.backoff?.baseMs, 1000)))
      arm(delay)
      return delay
    },
    halted() {
      clearRetry()
      notBefore = 0
      schedulePoll()
    },
    progressed() {
      attempts = 0
    },
    reset() {
      attempts = 0
      notBefore = 0
      waitingForOnline = false
      clearPoll()
      // A `Retry-After` is about the server, not the user: it outlives the switch.
      holdOn()
    },
    retryPending: () => retryTimer !== undefined,
  }
  return scheduler
}
