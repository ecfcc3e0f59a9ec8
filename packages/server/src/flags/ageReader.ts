/**
 * Reads how old a time (epoch ms: what is served was fetched then) is at `now` (the wall clock), in
 * ms, for a gauge or a status read when asked: `now - at`, or, when more, the age it had when this
 * `at` was first read plus the time a monotonic clock (`tick`) saw pass since. On the wall clock
 * alone, NTP setting it back an hour made what is served look fetched an hour ahead: 0 s old for
 * the hour, and an alert on the age never fired however long the upstream was down. Never negative.
 * (A step forward still ages it at once, as before: an alert that fires early, never one that stays
 * quiet.) One reader per thing whose age is read: it remembers the last `at` only.
 * Default: `tick` is `performance.now()`.
 */
export function createAgeReader(tick: () => number = () => performance.now()): AgeReader {
  let seen: { at: number; age: number; tick: number } | undefined
  return (at, now) => {
    const wall = Math.max(0, now - at)
    const ticked = tick()
    if (seen?.at !== at) seen = { at, age: wall, tick: ticked }
    return Math.max(wall, seen.age + Math.max(0, ticked - seen.tick))
  }
}

/** How old (ms) `at` is at `now`; see {@link createAgeReader}. */
export type AgeReader = (at: number, now: number) => number

/** A status's `ageSeconds`: whole seconds since `at` by `reader`, or null when nothing is served. */
export function ageSeconds(reader: AgeReader, at: number | undefined | null, now: number): number | null {
  return at === undefined || at === null ? null : Math.round(reader(at, now) / 1000)
}
