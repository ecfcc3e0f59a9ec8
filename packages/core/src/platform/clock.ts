import type { Clock } from '../types'

/**
 * The real clock: `Date.now`, `setTimeout`, `clearTimeout`. The default of `ClientOptions.clock`.
 * A delay past the 32-bit timers' 2^31 - 1 ms (24.8 days), which browsers and Node fire at once,
 * waits that long instead: a huge interval or timeout option is never a storm or an instant timeout.
 */
export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, Math.min(ms, 2147483647)),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
}
