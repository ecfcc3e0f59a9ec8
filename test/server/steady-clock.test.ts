import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createSteadyClock } from '../../packages/server/src/flags/steadyClock'

// The relay's "how long since" clock (the 429/401 "one key's own" minute, clear-after, the data-dir
// resave, the Redis reshare, a follower's silent leader): it must keep moving after any reading the
// injected clock can give.
describe('createSteadyClock', () => {
  it('counts steps forward and takes a step back as no time', () => {
    let wall = 1_000_000
    const steady = createSteadyClock(() => wall, () => 0)
    wall += 5_000
    expect(steady()).toBe(5_000)
    wall -= 3_600_000
    expect(steady()).toBe(5_000)
    wall += 2_000
    expect(steady()).toBe(7_000)
  })

  it('a step back long after the last reading counts the time since it (a follower reading its silent leader)', () => {
    // A follower's last reading: its leader's report, at 10:00. The leader dies; nothing reads the
    // clock until the status is asked at 10:10, after NTP set the clock back an hour at 10:09.
    let wall = Date.UTC(2026, 0, 1, 10)
    let monotonic = 50_000
    const steady = createSteadyClock(() => wall, () => monotonic)
    const reportAt = steady()
    monotonic += 600_000
    wall += 600_000 - 3_600_000
    // Before, the step counted as no time and so did the ten minutes before it: the leader's
    // silence was 0 s old, and the follower said fresh (stale: false) for a poll, its timeout and
    // the margin more.
    expect(steady() - reportAt).toBe(600_000)
    // From there on, the wall clock's steps again.
    wall += 5_000
    monotonic += 5_000
    expect(steady() - reportAt).toBe(605_000)
  })

  it('a reading that is not a finite number (NaN, Infinity) is skipped: the clock keeps counting after it', () => {
    let wall = 1_000_000
    const steady = createSteadyClock(() => wall)
    for (const bad of [NaN, Infinity, -Infinity]) {
      wall = bad
      expect(steady()).toBe(steady())
    }
    wall = 1_010_000
    // Before, one NaN reading was kept as the last one and every later step compared false with
    // it: the clock stood still for good, and "within the last minute" was true for ever.
    expect(steady()).toBe(10_000)
    wall += 60_000
    expect(steady()).toBe(70_000)
  })

  it('never goes back and never moves more than the wall clock moved forward, or the monotonic clock across a step back (any readings)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.oneof(fc.double({ min: -1e13, max: 1e13, noNaN: true }), fc.constant(NaN), fc.constant(Infinity)), fc.nat(1e9)), { minLength: 1, maxLength: 40 }), (readings) => {
        let wall = 0
        let monotonic = 0
        const steady = createSteadyClock(
          () => wall,
          () => monotonic,
        )
        let previous = steady()
        let forward = 0
        let last = 0
        let lastTick = 0
        for (const [reading, passed] of readings) {
          wall = reading
          monotonic += passed
          if (Number.isFinite(reading)) {
            if (reading > last) forward += reading - last
            // Across a step back: the monotonic time since the reading before.
            else if (reading < last) forward += monotonic - lastTick
            last = reading
            lastTick = monotonic
          }
          const at = steady()
          expect(at).toBeGreaterThanOrEqual(previous)
          expect(Number.isFinite(at)).toBe(true)
          expect(at).toBeCloseTo(forward, 0)
          previous = at
        }
      }),
    )
  })
})
