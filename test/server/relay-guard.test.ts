// The guard between an upstream and what is served: empty and gutted flag sets are refused, and
// a per-context cache key never lets one credential's answer reach another.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { checkShrink } from '../../packages/server/src/flags/shrinkGuard'
import { contextKey, createContextCache } from '../../packages/server/src/flags/contextCache'
import { parseUnauthorizedPolicy, reduceHealth, initialHealth, shouldClear } from '../../packages/server/src/flags/upstreamHealth'
import { readUpstreamAnswer } from '../../packages/server/src/flags/upstreamAnswer'

const keys = fc.uniqueArray(fc.string({ minLength: 1, maxLength: 6 }), { maxLength: 40 })

describe('the shrink guard', () => {
  it('refuses an empty set always, and a set dropping more than the limit', () => {
    expect(checkShrink([], [], 50)).toMatchObject({ ok: false, reason: 'empty' })
    expect(checkShrink(['a', 'b'], [], 100)).toMatchObject({ ok: false, reason: 'empty' })
    const held = Array.from({ length: 10 }, (_, i) => `f${i}`)
    expect(checkShrink(held, held.slice(0, 1), 50)).toMatchObject({ ok: false, reason: 'shrink', dropped: 9, held: 10 })
    expect(checkShrink(held, held.slice(0, 5), 50)).toMatchObject({ ok: true, dropped: 5 })
    expect(checkShrink(held, held.slice(0, 4), 50)).toMatchObject({ ok: false, reason: 'shrink' })
    // Renaming every flag is a 100% drop, whatever was added.
    expect(checkShrink(['a', 'b'], ['c', 'd', 'e'], 50)).toMatchObject({ ok: false, reason: 'shrink' })
    expect(checkShrink(held, ['other'], Number.NaN)).toMatchObject({ ok: false, reason: 'shrink' })
  })

  it('accepts exactly when the dropped share is within the limit (property)', () => {
    fc.assert(
      fc.property(keys, keys, fc.integer({ min: 0, max: 100 }), (held, next, limit) => {
        const verdict = checkShrink(held, next, limit)
        if (next.length === 0) {
          expect(verdict.ok).toBe(false)
          return
        }
        const dropped = held.filter((k) => !next.includes(k)).length
        expect(verdict.ok).toBe(held.length === 0 || dropped / held.length <= limit / 100 + 1e-12)
        // A superset of what is held always passes.
        expect(checkShrink(held, [...held, ...next], limit).ok).toBe(true)
      }),
    )
  })
})

describe('the per-context cache key', () => {
  it('differs for any difference in context or forwarded headers, and ignores key order and header case', () => {
    const context = { targetingKey: 'u1', plan: 'pro' }
    const base = contextKey(context, { authorization: 'Bearer A' })
    expect(contextKey({ plan: 'pro', targetingKey: 'u1' }, { Authorization: 'Bearer A' })).toBe(base)
    expect(contextKey(context, { authorization: 'Bearer B' })).not.toBe(base)
    expect(contextKey(context, {})).not.toBe(base)
    expect(contextKey({ ...context, plan: 'free' }, { authorization: 'Bearer A' })).not.toBe(base)
    fc.assert(
      fc.property(fc.string(), fc.string(), (a, b) => {
        fc.pre(a !== b)
        expect(contextKey(context, { authorization: a })).not.toBe(contextKey(context, { authorization: b }))
      }),
    )
  })
})

describe('upstream health and --on-upstream-unauthorized', () => {
  it('parses the policy and clears only as told', () => {
    expect(parseUnauthorizedPolicy('keep')).toEqual({ mode: 'keep' })
    expect(parseUnauthorizedPolicy('clear')).toEqual({ mode: 'clear' })
    expect(parseUnauthorizedPolicy('clear-after=30')).toEqual({ mode: 'clear-after', seconds: 30 })
    for (const bad of ['', 'clear-after=', 'clear-after=-1', 'drop', 'clear-after=NaN']) expect(parseUnauthorizedPolicy(bad)).toBeUndefined()

    let health = initialHealth(true)
    health = reduceHealth(health, { type: 'failure', at: 1000, error: { kind: 'unauthorized', message: '401', httpStatus: 401 } })
    health = reduceHealth(health, { type: 'failure', at: 20_000, error: { kind: 'unauthorized', message: '401', httpStatus: 401 } })
    expect(health).toMatchObject({ state: 'unauthorized', unauthorizedSince: 1000, refused: 2 })
    expect(shouldClear({ mode: 'keep' }, health, 1e9)).toBe(false)
    expect(shouldClear({ mode: 'clear' }, health, 1000)).toBe(true)
    expect(shouldClear({ mode: 'clear-after', seconds: 30 }, health, 30_999)).toBe(false)
    expect(shouldClear({ mode: 'clear-after', seconds: 30 }, health, 31_000)).toBe(true)
    // Any other answer ends the streak.
    const recovered = reduceHealth(health, { type: 'failure', at: 40_000, error: { kind: 'http', message: '503', httpStatus: 503 } })
    expect(recovered.unauthorizedSince).toBeUndefined()
    expect(shouldClear({ mode: 'clear' }, recovered, 40_000)).toBe(false)
  })
})

describe('reading an upstream answer', () => {
  it('is tolerant of odd entries and strict about the envelope', () => {
    expect(readUpstreamAnswer('<html>', 'text/html')).toMatchObject({ ok: false })
    expect(readUpstreamAnswer('{}', 'application/json')).toMatchObject({ ok: false })
    expect(readUpstreamAnswer('not json', undefined)).toMatchObject({ ok: false })
    const read = readUpstreamAnswer(
      JSON.stringify({
        flags: [{ key: 'a', value: 1, reason: 7 }, { value: 2 }, { key: 'b', errorCode: 'GENERAL' }, { key: 'c', value: null }],
        metadata: { env: 'prod', holdfast: { source: 'upstream', fetchedAt: 5, stale: true }, nested: { no: 1 } },
      }),
      'application/json; charset=utf-8',
    )
    expect(read).toEqual({
      ok: true,
      answer: {
        entries: [{ key: 'a', value: 1 }, { key: 'b', errorCode: 'GENERAL' }, { key: 'c' }],
        skipped: 1,
        metadata: { env: 'prod' },
        upstreamHoldfast: { fetchedAt: 5, stale: true },
      },
    })
  })

  it('never throws on any JSON (property)', () => {
    fc.assert(
      fc.property(fc.json(), (text) => {
        const read = readUpstreamAnswer(text, 'application/json')
        if (read.ok) expect(Array.isArray(read.answer.entries)).toBe(true)
      }),
    )
  })
})

describe('the per-context cache', () => {
  it('is bounded by count and by bytes, least recently used out first, keeping the newest even alone', () => {
    const held = (bytes: number) => ({ flags: new Map(), fetchedAt: 1, source: 'upstream' as const, bytes })
    const byCount = createContextCache(2)
    byCount.set('a', held(1))
    byCount.set('b', held(1))
    byCount.get('a')
    byCount.set('c', held(1))
    expect(byCount.entries().map(([k]) => k)).toEqual(['a', 'c'])
    const byBytes = createContextCache(100, 1000)
    for (const key of ['a', 'b', 'c', 'd']) byBytes.set(key, held(300))
    expect(byBytes.entries().map(([k]) => k)).toEqual(['b', 'c', 'd'])
    byBytes.set('huge', held(5000))
    expect(byBytes.entries().map(([k]) => k)).toEqual(['huge'])
    byBytes.delete('huge')
    byBytes.set('e', held(300))
    expect(byBytes.size()).toBe(1)
  })
})

describe('the poller (who asks the upstream, and when)', () => {
  it('polls at start and on its interval, shares one attempt between concurrent callers, and can be gated', async () => {
    const { createPoller } = await import('../../packages/server/src/flags/poller')
    const scheduled: Array<{ run: () => void; ms: number }> = []
    const timers = { setTimeout: (run: () => void, ms: number) => (scheduled.push({ run, ms }), scheduled.length), clearTimeout: () => {} }
    let calls = 0
    let release!: () => void
    let allowed = true
    const poller = createPoller({
      intervalMs: 1000,
      timers,
      shouldPoll: () => allowed,
      poll: () => {
        calls++
        return new Promise<number>((resolve) => (release = () => resolve(calls)))
      },
    })
    const first = poller.start()
    const joined = poller.now()
    expect(calls).toBe(1)
    release()
    expect(await first).toBe(1)
    expect(await joined).toBe(1)
    await Promise.resolve()
    expect(scheduled.at(-1)!.ms).toBe(1000)
    allowed = false
    scheduled.at(-1)!.run()
    expect(calls).toBe(1) // gated: skipped, rescheduled
    const forced = poller.now() // an operator's refresh is never gated
    expect(calls).toBe(2)
    release()
    expect(await forced).toBe(2)
    poller.stop()
  })
})

describe("the leader's report, read from Redis", () => {
  it('keeps what is well formed and drops what is not: a follower times and persists it', async () => {
    const { readUpstreamReport } = await import('../../packages/server/src/store/upstreamReport')
    const good = { state: 'unauthorized', lastSuccessAt: 1, lastAttemptAt: 2, lastError: { kind: 'unauthorized', message: 'HTTP 401', httpStatus: 401 } }
    expect(readUpstreamReport(JSON.stringify(good))).toEqual(good)
    for (const junk of ['not json', 'null', '[]', '{}', '{"state":"sideways"}', '{"state":1}']) expect(readUpstreamReport(junk)).toBeUndefined()
    expect(readUpstreamReport(JSON.stringify({ state: 'unauthorized', lastAttemptAt: 'NaN', lastSuccessAt: 1e400, lastError: { kind: 'unauthorized', message: 42 } }))).toEqual({ state: 'unauthorized' })
    expect(readUpstreamReport(JSON.stringify({ state: 'failing', lastError: { kind: 'http', message: 'x'.repeat(100_000) } }))).toEqual({ state: 'failing' })
    expect(readUpstreamReport(JSON.stringify({ state: 'failing', lastError: { kind: 'http', message: 'down', httpStatus: 99.5 } }))).toEqual({ state: 'failing', lastError: { kind: 'http', message: 'down' } })
    // A `__proto__` key is data, dropped with every other unknown key: it never becomes the report's prototype.
    expect(readUpstreamReport('{"state":"ok","__proto__":{"lastError":{"kind":"x","message":"y"}}}')).toEqual({ state: 'ok' })
  })
})
