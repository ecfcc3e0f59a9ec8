/** A timer retried with backoff: see {@link createBackoffTimer}. */
export interface BackoffTimer {
  /** Runs the task after the current delay, which then doubles (at most `maxMs`). No-op while one is pending. */
  schedule(): void
  /** The next delay is `minMs` again (after a success). */
  reset(): void
  /** Cancels a pending run; later `schedule()` calls do nothing (the owner is closing). */
  stop(): void
}

/**
 * One unref'd timer for "try again later, less often each time": the relay's own re-asks (the
 * probe while nothing can be served, answers the shared store could not take) wait 1 s, 2 s,
 * 4 s … up to 30 s while they keep failing, and start from 1 s again once one succeeds.
 */
export function createBackoffTimer(task: () => void, minMs = 1000, maxMs = 30_000): BackoffTimer {
  let timer: ReturnType<typeof setTimeout> | undefined
  let delay = minMs
  let stopped = false
  return {
    schedule() {
      if (timer !== undefined || stopped) return
      const wait = delay
      delay = Math.min(delay * 2, maxMs)
      timer = setTimeout(() => {
        timer = undefined
        task()
      }, wait)
      timer.unref?.()
    },
    reset() {
      delay = minMs
    },
    stop() {
      stopped = true
      clearTimeout(timer)
      timer = undefined
    },
  }
}
