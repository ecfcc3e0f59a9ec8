// A bound on the requests in flight at once, with the others waiting their turn in arrival order.
// The proxy uses it so that a burst of contexts never seen, against a slow upstream, is not one
// upstream connection each.

/** See the file comment. */
export interface RequestSlots {
  /** Resolves true once a slot is held (give it back with `release`), false after `waitMs` without one. */
  acquire(waitMs: number): Promise<boolean>
  /** Gives a held slot back; the longest waiting caller gets it. */
  release(): void
  /** Tells every waiting caller false (the server is closing). */
  abandon(): void
}

/** Creates {@link RequestSlots} with `max` slots (at least one). */
export function createRequestSlots(max: number): RequestSlots {
  const limit = Math.max(1, max)
  let held = 0
  const waiting = new Set<(granted: boolean) => void>()
  return {
    acquire(waitMs) {
      if (held < limit) {
        held++
        return Promise.resolve(true)
      }
      return new Promise((resolve) => {
        const done = (granted: boolean) => {
          clearTimeout(timer)
          waiting.delete(done)
          if (granted) held++
          resolve(granted)
        }
        const timer = setTimeout(() => done(false), waitMs)
        waiting.add(done)
      })
    },
    release() {
      held--
      const next = waiting.values().next()
      if (!next.done) next.value(true)
    },
    abandon() {
      for (const waiter of [...waiting]) waiter(false)
    },
  }
}
