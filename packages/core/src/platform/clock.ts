import type { Clock } from '../types'

/** The real clock: `Date.now`, `setTimeout`, `clearTimeout`. The default of `ClientOptions.clock`. */
export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
}
