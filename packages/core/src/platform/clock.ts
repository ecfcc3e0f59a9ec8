import type { Clock } from '../types'

/** The real clock: `Date.now`, `setTimeout`, `clearTimeout`. The default of `ClientOptions.clock`. */
export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
}

/**
 * Waits for `promise`, or `ms` on `clock`, whichever comes first; resolves undefined when time ran
 * out. The timer is cleared either way.
 */
export async function within<T>(clock: Clock, ms: number, promise: Promise<T>): Promise<T | undefined> {
  let timer: unknown
  const late = new Promise<undefined>((resolve) => (timer = clock.setTimeout(() => resolve(undefined), ms)))
  try {
    return await Promise.race([promise, late])
  } finally {
    clock.clearTimeout(timer)
  }
}
