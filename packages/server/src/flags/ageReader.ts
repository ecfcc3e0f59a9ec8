/**
 * Reads how old a time (epoch ms: what is served was fetched then) is now, in ms, for a gauge read
 * at each scrape: the wall clock's `now() - at`, or, when more, the age it had when this `at` was
 * first read plus the time a monotonic clock (`tick`) saw pass since. On the wall clock alone, NTP
 * setting it back an hour made what is served look fetched an hour ahead: 0 s old for the hour, and
 * an alert on the age never fired however long the upstream was down. Never negative. (A step
 * forward still ages it at once, as before: an alert that fires early, never one that stays quiet.)
 * Default: none for `now`; `tick` is `performance.now()`.
 */
export function createAgeReader(now: () => number, tick: () => number = () => performance.now()): (at: number) => number {
  let seen: { at: number; age: number; tick: number } | undefined
  return (at) => {
    const wall = Math.max(0, now() - at)
    const ticked = tick()
    if (seen?.at !== at) seen = { at, age: wall, tick: ticked }
    return Math.max(wall, seen.age + Math.max(0, ticked - seen.tick))
  }
}
