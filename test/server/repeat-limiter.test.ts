// The bound on lines of one kind (holdfast-server's log), on an injected clock.
import { describe, expect, it } from 'vitest'
import { createRepeatLimiter } from '../../packages/server/src/repeatLimiter'
import { recordingLogger } from './helpers'

describe('repeat limiter', () => {
  it('writes 5 of a kind per 60 s, then one line counting the rest with the last of them', () => {
    let now = 0
    const target = recordingLogger()
    const limiter = createRepeatLimiter(target, { now: () => now })
    for (let i = 1; i <= 10_000; i++) limiter.logger.error(`[holdfast-server] events upstream refused 1 event(s) with 400 (ids e${i} … e${i})`)
    limiter.logger.warn('[holdfast-server] another kind')
    expect(target.lines).toHaveLength(6)
    limiter.tick()
    expect(target.lines).toHaveLength(6)
    now = 60_000
    limiter.tick()
    expect(target.lines.at(-1)).toBe('[holdfast-server] … and 9,995 more like this in the last 60 s (the last: events upstream refused 1 event(s) with 400 (ids e10000 … e10000))')
    // A new window: written again.
    limiter.logger.error('[holdfast-server] events upstream refused 2 event(s) with 400 (ids a … b)')
    expect(target.lines.at(-1)).toBe('[holdfast-server] events upstream refused 2 event(s) with 400 (ids a … b)')
  })

  it('past maxKinds (default 500) kinds at once, new kinds share one bound; tick(true) says every count before an exit', () => {
    const target = recordingLogger()
    const limiter = createRepeatLimiter(target, { now: () => 0, maxKinds: 3 })
    for (const word of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j']) limiter.logger.error(`[holdfast-server] GET /${word} failed`)
    expect(target.lines).toHaveLength(3 + 5)
    limiter.tick(true)
    expect(target.lines.at(-1)).toBe('[holdfast-server] … and 2 more like this in the last 60 s (the last: GET /j failed)')
  })

  it('a kind that falls quiet for 2 s has what it held back said then, in the order the last lines came', () => {
    let now = 0
    const target = recordingLogger()
    const limiter = createRepeatLimiter(target, { now: () => now })
    // Down, back, down, back … six times in 6 s: the sixth of each is held back.
    for (let i = 1; i <= 6; i++) {
      now += 500
      limiter.logger.warn(`[holdfast-server] source down (attempt ${i})`)
      now += 500
      limiter.logger.info(`[holdfast-server] source back (after ${i} s)`)
    }
    expect(target.lines.at(-1)).toBe('[holdfast-server] source back (after 5 s)')
    now += 1499
    limiter.tick()
    expect(target.lines).toHaveLength(10)
    now += 501
    limiter.tick()
    // Both said, the latest state last: within the window, not 60 s on.
    expect(target.lines.slice(10)).toEqual([
      '[holdfast-server] … and 1 more like this in the last 60 s (the last: source down (attempt 6))',
      '[holdfast-server] … and 1 more like this in the last 60 s (the last: source back (after 6 s))',
    ])
    // The window goes on: a seventh is held back again, and said once quiet.
    limiter.logger.warn('[holdfast-server] source down (attempt 7)')
    expect(target.lines).toHaveLength(12)
    now += 2000
    limiter.tick()
    expect(target.lines.at(-1)).toBe('[holdfast-server] … and 1 more like this in the last 60 s (the last: source down (attempt 7))')
  })
})
