/**
 * A clock that only moves forward, made from a wall clock (`now`, epoch ms): the sum of its steps
 * forward since the first reading, a step back counting as no time. For "how long since" on the
 * injected clock: a wall clock NTP sets back an hour made something a second old look an hour
 * ahead (neither recent nor old: every "within the last minute" said no until the clock caught up).
 * Read it at each event it measures; a step back is caught at the next reading, so the time from
 * the step to that reading is not counted. Default: none (each user passes its own `now`).
 */
export function createSteadyClock(now: () => number): () => number {
  let last = now()
  let elapsed = 0
  return () => {
    const at = now()
    if (at > last) elapsed += at - last
    last = at
    return elapsed
  }
}
