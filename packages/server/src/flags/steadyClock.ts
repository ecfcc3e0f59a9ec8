/**
 * A clock that only moves forward, made from a wall clock (`now`, epoch ms): the sum of its steps
 * forward since the first reading, a step back counting as no time. For "how long since" on the
 * injected clock: a wall clock NTP sets back an hour made something a second old look an hour
 * ahead (neither recent nor old: every "within the last minute" said no until the clock caught up).
 * Read it at each event it measures; a step back is caught at the next reading, so the time from
 * the step to that reading is not counted. A reading that is not a finite number (NaN, Infinity:
 * a broken injected clock) is skipped: kept as the last one, every later step compared false with
 * it, and the clock stood still for good ("within the last minute" true for ever).
 * Default: none (each user passes its own `now`).
 */
export function createSteadyClock(now: () => number): () => number {
  let last: number | undefined
  let elapsed = 0
  const read = () => {
    const at = now()
    if (!Number.isFinite(at)) return elapsed
    if (last !== undefined && at > last) elapsed += at - last
    last = at
    return elapsed
  }
  read()
  return read
}
