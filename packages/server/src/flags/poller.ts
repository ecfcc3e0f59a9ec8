// "Who asks the upstream, and when" lives here and nowhere else: the interval, the first attempt at
// start, the refresh endpoint and (later) a Redis lease all go through one poller, so there is
// never more than one request in flight and a lease can gate every one of them.

/** Timers the poller uses; tests may inject their own. Default: the global ones. */
export interface PollerTimers {
  setTimeout(callback: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

/** Options of {@link createPoller}. */
export interface PollerOptions<T> {
  /** Milliseconds between the end of one attempt and the start of the next. */
  intervalMs: number
  /** One attempt. Should not reject; a rejection is swallowed and the schedule goes on. */
  poll(): Promise<T>
  /**
   * Asked before each scheduled attempt; false skips that tick (e.g. another relay holds the
   * lease). `now()` is not gated: an operator's explicit refresh always goes out. Default: always.
   */
  shouldPoll?(): boolean
  timers?: PollerTimers
}

/** The poller: see the file comment. */
export interface Poller<T> {
  /** Starts the schedule with an immediate attempt; resolves when that first attempt settles. */
  start(): Promise<T | undefined>
  /** An attempt now; joins the one in flight if there is one, so concurrent callers share it. */
  now(): Promise<T>
  /** Stops the schedule (an attempt in flight finishes but schedules nothing). Idempotent. */
  stop(): void
}

/** Creates a {@link Poller}; nothing runs until `start()` or `now()`. */
export function createPoller<T>(options: PollerOptions<T>): Poller<T> {
  const timers = options.timers ?? { setTimeout: (cb, ms) => setTimeout(cb, ms), clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>) }
  let inFlight: Promise<T> | undefined
  let timer: unknown
  let running = false

  const schedule = () => {
    if (!running) return
    timers.clearTimeout(timer)
    timer = timers.setTimeout(tick, options.intervalMs)
    ;(timer as { unref?: () => void })?.unref?.()
  }
  const tick = () => {
    if (!running) return
    if (options.shouldPoll && !options.shouldPoll()) return schedule()
    void now()
  }
  const now = (): Promise<T> => {
    if (inFlight) return inFlight
    const attempt = options.poll()
    inFlight = attempt
    const done = () => {
      inFlight = undefined
      schedule()
    }
    attempt.then(done, done)
    return attempt
  }

  return {
    async start() {
      if (running) return undefined
      running = true
      if (options.shouldPoll && !options.shouldPoll()) {
        schedule()
        return undefined
      }
      return now().catch(() => undefined)
    },
    now,
    stop() {
      running = false
      timers.clearTimeout(timer)
    },
  }
}
