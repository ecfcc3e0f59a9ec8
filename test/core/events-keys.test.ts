// Storage keys of events sort, as strings, in the order the events were logged, whatever the clock
// reads: a clock set back, one that jumps ahead, NaN, negative, fractional. And a key seen in
// storage (an earlier page's) is always older than any key handed out after it was seen, unless
// it claims to be more than a day ahead (a corrupt key must not drag every later key along).
import { expect, test } from 'vitest'
import fc from 'fast-check'
import { EVENT_PREFIX, nextEventKey, type KeyClock } from '../../packages/core/src/events/eventKey'
import { observeEventKey } from '../../packages/core/src/events/delivery/storeReader'

const reading = fc.oneof(
  fc.integer({ min: 0, max: 4_000_000_000_000 }),
  fc.double({ noNaN: false }),
  fc.constantFrom(Number.NaN, -1, 0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1.5),
)

test('keys handed out are strictly increasing as strings, whatever the clock reads', () => {
  fc.assert(
    fc.property(fc.array(reading, { minLength: 2, maxLength: 60 }), (readings) => {
      const clock: KeyClock = { tick: 0, seq: 0 }
      const keys = readings.map((now, i) => nextEventKey(clock, now, `id-${i}`))
      for (let i = 1; i < keys.length; i++) expect(keys[i] > keys[i - 1]).toBe(true)
      for (const key of keys) expect(key).toMatch(/^holdfast:event:\d{15}:\d{9}:id-\d+$/)
    }),
  )
})

test('after a stored key is observed, every new key sorts after it (unless it claims to be over a day ahead)', () => {
  const now = 1_800_000_000_000
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 * 24 * 60 * 60 * 1000 }), fc.integer({ min: 0, max: 999_999 }), (ahead, seq) => {
      const stored = `holdfast:event:${String(now + ahead).padStart(15, '0')}:${String(seq).padStart(9, '0')}:other-page`
      const clock: KeyClock = { tick: 0, seq: 0 }
      observeEventKey(clock, now, stored, EVENT_PREFIX)
      const next = nextEventKey(clock, now, 'mine')
      expect(next > stored).toBe(ahead <= 24 * 60 * 60 * 1000)
    }),
  )
})

test('observing garbage changes nothing', () => {
  for (const key of [undefined, '', 'holdfast:event:', 'holdfast:event:abc:def:x', 'other:000000000000001:000000000:x']) {
    const clock: KeyClock = { tick: 5, seq: 2 }
    observeEventKey(clock, Date.now(), key, EVENT_PREFIX)
    expect(clock).toEqual({ tick: 5, seq: 2 })
  }
})
