/**
 * A clock that only moves forward, made from a wall clock (`now`, epoch ms): the sum of its steps
 * forward since the first reading; across a step back, the time `tick` (a monotonic clock) says
 * passed since the reading before. For "how long since" on the injected clock: a wall clock NTP
 * sets back an hour made something a second old look an hour ahead (neither recent nor old: every
 * "within the last minute" said no until the clock caught up). Before `tick`, a step back counted
 * as no time, and so did everything from the reading before it to the step: a follower last read
 * at its leader's report ten minutes earlier, then stepped back, called that leader's silence a
 * moment old, so its values were fresh again for a poll, its timeout and the margin.
 * A reading that is not a finite number (NaN, Infinity: a broken injected clock) is skipped: kept
 * as the last one, every later step compared false with it, and the clock stood still for good
 * ("within the last minute" true for ever).
 * Default: none for `now` (each user passes its own); `tick` is `performance.now()`.
 */
export function createSteadyClock(now: () => number, tick: () => number = () => performance.now()): () => number {
  let last: number | undefined
  let lastTick = tick()
  let elapsed = 0
  const read = () => {
    const at = now()
    const ticked = tick()
    if (!Number.isFinite(at)) return elapsed
    if (last !== undefined && at > last) elapsed += at - last
    else if (last !== undefined && at < last && ticked > lastTick) elapsed += ticked - lastTick
    last = at
    lastTick = ticked
    return elapsed
  }
  read()
  return read
}

/**
 * The longest a Node timer waits: 2^31-1 ms (24.8 days). A longer `setTimeout` fires after 1 ms
 * (with a TimeoutOverflowWarning), so a timer that looks again when it fired early (the
 * `clear-after` timers) ran a 1 ms loop for as long as a clear-after of a month lasted. A timer
 * capped at this fires early, finds the moment not come, and waits again.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * The wait for a timer due at `due` on the steady clock read `now`: a millisecond past it (so the
 * timer finds the moment come), never negative, at most {@link MAX_TIMER_MS} (it looks again then).
 */
export function waitUntil(due: number, now: number): number {
  return Math.min(MAX_TIMER_MS, Math.max(0, due - now) + 1)
}
