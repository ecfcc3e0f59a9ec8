// SharedContexts.missed: the upstream failed a context's request (or was not asked: the breaker, a
// pause), so the store is asked in the background whether it holds a newer answer for it than this
// relay (another relay's, whose notice never came: Redis refused to publish it, or it was lost).
import { setBounded } from '../lru'

/**
 * One look-up per context at most this often, at most this many out at once, and at most this many
 * a second in all. Without the last, a store that answers at once got 8 reads per turn of the event
 * loop (800 a second with 5,000 users failing in an outage, where these reads mostly find nothing: a
 * lost notice is rare), and past `maxContexts` distinct users the per-context wait no longer holds.
 */
const MISSED_CHECK_EVERY_MS = 5000
const MISSED_CHECKS_AT_ONCE = 8
const MISSED_CHECKS_PER_SECOND = 100

/** What {@link createMissedLookups} needs from the shared contexts. */
export interface MissedLookupsOptions {
  /** Contexts remembered (when each was last looked up), the oldest out. */
  max: number
  /** Whether the store may be asked (not known to be down: each read would only fail). */
  usable: () => boolean
  /** Looks `contextKey` up in the store (taken when newer than what is held). */
  check: (contextKey: string) => Promise<unknown>
}

/** Creates the look-ups: call the result with each context missed; it looks up those the bounds allow. */
export function createMissedLookups(options: MissedLookupsOptions): (contextKey: string) => void {
  // When each context was last looked up in the store (performance.now()), and how many look-ups
  // are out (an outage fails every user's request: the store must not get one read each).
  const checkedAt = new Map<string, number>()
  let checking = 0
  let secondAt = -Infinity
  let inSecond = 0
  return (contextKey) => {
    const at = performance.now()
    const last = checkedAt.get(contextKey)
    if (at - secondAt >= 1000) {
      secondAt = at
      inSecond = 0
    }
    if (!options.usable() || checking >= MISSED_CHECKS_AT_ONCE || inSecond >= MISSED_CHECKS_PER_SECOND || (last !== undefined && at - last < MISSED_CHECK_EVERY_MS)) return
    inSecond++
    setBounded(checkedAt, contextKey, at, options.max)
    checking++
    void options.check(contextKey).finally(() => checking--)
  }
}
