import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createSteadyClock } from '../../packages/server/src/flags/steadyClock'

// The relay's "how long since" clock (the 429/401 "one key's own" minute, clear-after, the data-dir
// resave, the Redis reshare, a follower's silent leader): it must keep moving after any reading the
// injected clock can give.
describe('createSteadyClock', () => {
  it('counts steps forward and takes a step back as no time', () => {
    let wall = 1_000_000
    const steady = createSteadyClock(() => wall)
    wall += 5_000
    expect(steady()).toBe(5_000)
    wall -= 3_600_000
    expect(steady()).toBe(5_000)
    wall += 2_000
    expect(steady()).toBe(7_000)
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

  it('never goes back and never moves more than the wall clock moved forward (any readings)', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.double({ min: -1e13, max: 1e13, noNaN: true }), fc.constant(NaN), fc.constant(Infinity)), { minLength: 1, maxLength: 40 }), (readings) => {
        let wall = 0
        const steady = createSteadyClock(() => wall)
        let previous = steady()
        let forward = 0
        let last = 0
        for (const reading of readings) {
          wall = reading
          if (Number.isFinite(reading)) {
            if (reading > last) forward += reading - last
            last = reading
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
