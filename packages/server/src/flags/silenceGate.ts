// Proxy mode: an upstream that accepts connections and never answers (a hung process, a full
// accept queue behind a load balancer) opens the breaker only when its first requests time out.
// Until then, every new user's request went upstream, one connection each (up to
// maxUpstreamRequests, 256, at once): a flood of a service that is already stuck.
//
//   t=0   user-1 → upstream … (no answer)
//   t=1 s the upstream is silent: user-1's request has gone unanswered 1 s, nothing came back since.
//         user-2…user-N wait here instead of opening a connection each; one of them goes every
//         1 s all the same (the canary: an upstream back from a hang is found at once, not when
//         the hung requests time out)
//   t=5 s user-1 times out, then the next: the breaker opens; the waiters are answered unasked
//   (a slow upstream that answers user-1 at t=2 s lets the waiters go at once: nothing is lost but a wait)
//
// A request out 1 s is silence only for an upstream that answers faster: one that takes 3.5 s (its
// timeout 5 s) made every user who came 1 s after the first of a burst wait 2.5 s for that answer,
// then 3.5 s for their own, and get 503 past the 5 s bound (every one got 200 without the gate).
// So a request counts as silent after `quietMs` or twice the slowest of the latest answers,
// whichever is longer: the gate still holds a hung upstream that answered fast before, and leaves
// one that is slow but answering as it was.

/** See the file comment. */
export interface SilenceGate {
  /** Whether a request has gone unanswered `quietMs` (or twice the slowest recent answer) and nothing came back from the upstream since it went out. */
  silent(): boolean
  /**
   * Resolves true once the upstream is not silent, or this caller is the one let through this
   * `quietMs` (at once when it is not silent), or `over()` says to stop waiting (checked whenever a
   * request settles: the breaker opened); false after `waitMs`, or when abandoned.
   */
  wait(waitMs: number, over?: () => boolean): Promise<boolean>
  /** A request goes out; call the result when it settles, `heard` false for a timeout (no answer at all). */
  begin(): (heard: boolean) => void
  /** Tells every waiting caller false (the server is closing). */
  abandon(): void
}

/** How many of the latest answers' times the gate goes by: 16. */
const RECENT_ANSWERS = 16

/** Creates a {@link SilenceGate}: silent after `quietMs` without an answer. `now` is a monotonic clock. */
export function createSilenceGate(quietMs: number, now: () => number = () => performance.now()): SilenceGate {
  let heardAt = -Infinity
  let canaryAt = -Infinity
  let abandoned = false
  // In start order (a Set keeps insertion order): the first started after `heardAt` is the oldest
  // request the upstream has said nothing about since.
  const flying = new Set<{ at: number }>()
  const waiters = new Set<() => void>()
  // How long the latest answers took (a ring of RECENT_ANSWERS): see the file comment.
  const took: number[] = []
  let tookNext = 0
  const silent = () => {
    for (const flight of flying) if (flight.at > heardAt) return now() - flight.at >= Math.max(quietMs, 2 * Math.max(0, ...took))
    return false
  }
  const wake = () => {
    for (const waiter of [...waiters]) waiter()
  }
  return {
    silent,
    async wait(waitMs, over) {
      const until = now() + waitMs
      for (;;) {
        if (abandoned) return false
        if (!silent() || over?.()) return true
        if (now() - canaryAt >= quietMs) {
          canaryAt = now()
          return true
        }
        const left = until - now()
        if (left <= 0) return false
        // Woken by any request settling, or when the next canary is due.
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer)
            waiters.delete(done)
            resolve()
          }
          const timer = setTimeout(done, Math.max(1, Math.min(left, canaryAt + quietMs - now())))
          waiters.add(done)
        })
      }
    },
    begin() {
      const flight = { at: now() }
      flying.add(flight)
      return (heard) => {
        if (!flying.delete(flight)) return
        if (heard) {
          heardAt = now()
          took[tookNext] = heardAt - flight.at
          tookNext = (tookNext + 1) % RECENT_ANSWERS
        }
        wake()
      }
    },
    abandon() {
      abandoned = true
      wake()
    },
  }
}
