import { monitorEventLoopDelay, type IntervalHistogram, performance } from 'node:perf_hooks'

/** Default `maxEventLoopDelayMs`: past 500 ms of event-loop delay, new work is refused with 503. */
export const DEFAULT_MAX_EVENT_LOOP_DELAY_MS = 500

/** How often the lag timer samples the event loop: every 50 ms. */
export const LAG_SAMPLE_MS = 50

/** Decides when the server is too far behind to take more work (503 + `Retry-After`). */
export interface LoadShedder {
  /** True while the latest measured event-loop delay is over the threshold. */
  overloaded(): boolean
  /** The current delay, in milliseconds: the latest sample, or how overdue the next one is. */
  lagMs(): number
  /** p50, p99 and max delay (ms) since the previous call; undefined before any sample. */
  window(): { p50: number; p99: number; max: number } | undefined
  /** Stops the timers. Idempotent. */
  stop(): void
}

/**
 * Creates a {@link LoadShedder}. A lag timer set for every {@link LAG_SAMPLE_MS} measures how late
 * it fires; a late timer means requests are queueing behind work on the loop. When that delay
 * passes `maxEventLoopDelayMs` (default {@link DEFAULT_MAX_EVENT_LOOP_DELAY_MS}; 0 disables
 * shedding), requests that arrive are answered 503 at once instead of joining a multi-second
 * queue, until a sample comes back under the threshold. `monitorEventLoopDelay` feeds the
 * percentiles shown in `/metrics`. Timers are unref'd: they never keep a process alive.
 */
export function createLoadShedder(options: { maxEventLoopDelayMs?: number; now?: () => number } = {}): LoadShedder {
  const threshold = options.maxEventLoopDelayMs ?? DEFAULT_MAX_EVENT_LOOP_DELAY_MS
  const now = options.now ?? (() => performance.now())
  let lag = 0
  let expected = now() + LAG_SAMPLE_MS
  const timer = setInterval(() => {
    const at = now()
    lag = Math.max(0, at - expected)
    expected = at + LAG_SAMPLE_MS
  }, LAG_SAMPLE_MS)
  timer.unref()
  let histogram: IntervalHistogram | undefined
  try {
    histogram = monitorEventLoopDelay({ resolution: 10 })
    histogram.enable()
  } catch {
    histogram = undefined
  }
  // The timer only reports after the loop is free again; a tick that is overdue right now is
  // the freshest evidence (requests that queued behind a long task are read before the timer runs).
  const current = () => Math.max(lag, now() - expected)
  return {
    overloaded: () => threshold > 0 && current() > threshold,
    lagMs: current,
    window() {
      if (!histogram || histogram.count === 0) return undefined
      const result = { p50: histogram.percentile(50) / 1e6, p99: histogram.percentile(99) / 1e6, max: histogram.max / 1e6 }
      histogram.reset()
      return result
    },
    stop() {
      clearInterval(timer)
      histogram?.disable()
    },
  }
}
