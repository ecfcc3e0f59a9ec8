// The breaker's reducer (proxy mode), without I/O: what opens it, its backoff, jitter and cap.
import { describe, expect, it } from 'vitest'
import { BREAKER_MAX_MS, CLOSED_BREAKER, probeDue, reduceBreaker, type BreakerState } from '../../packages/server/src/flags/upstreamBreaker'

const at = 1_800_000_000_000

describe('reduceBreaker', () => {
  it('opens at the second distinct context down with no answer between, not at one context down again and again', () => {
    let state: BreakerState = CLOSED_BREAKER
    for (let i = 0; i < 5; i++) state = reduceBreaker(state, { type: 'down', at, key: 'crash', jitter: 0.5 })
    expect(state.open).toBe(false)
    state = reduceBreaker(state, { type: 'answered' })
    state = reduceBreaker(state, { type: 'down', at, key: 'crash', jitter: 0.5 })
    state = reduceBreaker(state, { type: 'answered' })
    state = reduceBreaker(state, { type: 'down', at, key: 'other', jitter: 0.5 })
    expect(state.open).toBe(false)
    state = reduceBreaker(state, { type: 'down', at, key: 'crash', jitter: 0.5 })
    expect(state).toMatchObject({ open: true, openedAt: at, probeAt: at + 1000, probes: 0 })
    expect(reduceBreaker(state, { type: 'answered' })).toBe(CLOSED_BREAKER)
  })

  it('an answer that blames the request (a 400, a 401/403) changes nothing: it neither closes it nor keeps it from opening', () => {
    let state = reduceBreaker(CLOSED_BREAKER, { type: 'down', at, key: 'a', jitter: 0.5 })
    state = reduceBreaker(state, { type: 'answered', blamed: true })
    state = reduceBreaker(state, { type: 'down', at, key: 'b', jitter: 0.5 })
    expect(state.open).toBe(true)
    expect(reduceBreaker(state, { type: 'answered', blamed: true })).toBe(state)
  })

  it('a context never answered (a 5xx for it) counts within 5 s of an answer with values only beside a context that had values', () => {
    const answered = reduceBreaker(CLOSED_BREAKER, { type: 'answered', at })
    const unknown = (state: BreakerState, key: string, after: number) => reduceBreaker(state, { type: 'down', at: at + after, key, jitter: 0.5, unknown: true })
    // Made-up contexts, as many as an attacker likes: nothing while the upstream answers others.
    let state = answered
    for (let i = 0; i < 10; i++) state = unknown(state, `evil-${i}`, 4999)
    expect(state.open).toBe(false)
    // Beside a context that had values failing (an outage), it counts.
    state = reduceBreaker(answered, { type: 'down', at: at + 10, key: 'held', jitter: 0.5 })
    expect(unknown(state, 'evil-0', 20).open).toBe(true)
    // Nobody answered for 5 s (or ever, or the clock went back): it counts.
    expect(unknown(unknown(answered, 'a', 5000), 'b', 5000).open).toBe(true)
    expect(unknown(unknown(CLOSED_BREAKER, 'a', 0), 'b', 0).open).toBe(true)
    expect(unknown(unknown(answered, 'a', -10), 'b', -10).open).toBe(true)
  })

  it('probes 1 s, 2 s, 4 s … after, each within ±20 %, never more than 5 s apart', () => {
    let state = reduceBreaker(reduceBreaker(CLOSED_BREAKER, { type: 'down', at, key: 'a', jitter: 0 }), { type: 'down', at, key: 'b', jitter: 0 })
    expect(state.probeAt).toBe(at + 800)
    const waits: number[] = []
    let t = at
    for (let i = 0; i < 10; i++) {
      t = state.probeAt!
      expect(probeDue(state, t - 1)).toBe(false)
      expect(probeDue(state, t)).toBe(true)
      state = reduceBreaker(state, { type: 'probe', at: t, jitter: 0.999 })
      waits.push(state.probeAt! - t)
    }
    expect(waits.slice(0, 5)).toEqual([2399, 4798, 5000, 5000, 5000])
    expect(Math.max(...waits)).toBe(BREAKER_MAX_MS)
    // A clock set back an hour: the probe is due, not an hour away.
    expect(probeDue(state, t - 3_600_000)).toBe(true)
  })

  it('an answer another relay shares makes the next probe due now, but not sooner than 1 s after the latest probe', () => {
    let state = reduceBreaker(reduceBreaker(CLOSED_BREAKER, { type: 'down', at, key: 'a', jitter: 0 }), { type: 'down', at, key: 'b', jitter: 0 })
    for (let i = 1; i <= 6; i++) state = reduceBreaker(state, { type: 'probe', at: at + i * 31_000, jitter: 0.5 })
    const probedAt = at + 6 * 31_000
    expect(state.probeAt).toBe(probedAt + 5_000)
    expect(reduceBreaker(state, { type: 'heard', at: probedAt + 200 }).probeAt).toBe(probedAt + 1000)
    const heard = reduceBreaker(state, { type: 'heard', at: probedAt + 5000 })
    expect(probeDue(heard, probedAt + 5000)).toBe(true)
    expect(reduceBreaker(CLOSED_BREAKER, { type: 'heard', at })).toBe(CLOSED_BREAKER)
  })
})
