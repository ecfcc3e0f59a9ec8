// Proxy mode under --on-upstream-unauthorized clear-after=S: the timer armed at a key's first 401
// (1c26132) drops the contexts refused in the run once it has lasted S seconds by the relay's steady
// clock, without another request. A timer that fires while that clock says "not yet" must look again
// later, as the --flags-url timer does: a timer may fire before the clock reached the moment (Node
// dates a timer from the event loop's cached time, which a busy loop leaves behind; an NTP slew runs
// the wall clock slow), and one that gave up left the revoked user's values held for good.
import { describe, expect, it } from 'vitest'
import { createUpstreamSource } from '@holdfast/server'
import { recordingLogger, waitFor } from './helpers'
import { booleanFlags, startUpstream, urlSourceFor } from './relay-fakes'

describe('proxy mode: the clear-after timer', () => {
  it('drops a refused context once the steady clock says S seconds passed, also when its timer fires before that', async () => {
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'plan', value: 'pro', reason: 'STATIC' }] }) })
    // A wall clock running at half speed (an exaggerated NTP slew): the relay's steady clock, made
    // from it, reaches 0.3 s after 0.6 s of real time, later than a timer set for 0.3 s fires.
    const started = performance.now()
    const now = () => 1_800_000_000_000 + (performance.now() - started) / 2
    const source = createUpstreamSource({ url: upstream.url, maxShrinkPercent: 50, onUnauthorized: { mode: 'clear-after', seconds: 0.3 }, timeoutMs: 2000, log: recordingLogger(), now })
    await source.open()
    try {
      const ask = async () => (await source.evaluate!({ context: { targetingKey: 'victim' }, headers: { authorization: 'Bearer revoked' } })).status
      expect(await ask()).toBe(200)
      // The key is revoked: one 401, its user's values kept (stale) for now; nobody asks again.
      upstream.set({ status: 401, json: { errorCode: 'UNAUTHORIZED' } })
      expect(await ask()).toBe(200)
      const requests = upstream.requests.length
      expect(source.relayStatus!().contexts).toBe(1)
      // Before: the timer fired at 0.3 s of real time, the steady clock said 0.15 s, and it gave up:
      // the values stayed held (and in the data dir) until the user's next 401.
      await waitFor(() => source.relayStatus!().contexts === 0, 3000)
      expect(upstream.requests.length).toBe(requests)
    } finally {
      await source.close()
    }
  })
})

describe('--flags-url: the clear-after timer', () => {
  it('drops the definitions S seconds after the first 401, also when the wall clock is set back an hour meanwhile', async () => {
    const upstream = await startUpstream({ document: booleanFlags(3) })
    // The wall clock moves with real time; NTP sets it back an hour after the first 401.
    const started = performance.now()
    let offset = 0
    const now = () => 1_800_000_000_000 + (performance.now() - started) + offset
    const source = urlSourceFor(upstream, { pollIntervalMs: 3_600_000, onUnauthorized: { mode: 'clear-after', seconds: 0.3 }, now })
    await source.open()
    try {
      expect(source.current()?.flagCount).toBe(3)
      upstream.set({ status: 401, json: { error: 'revoked' } })
      expect(await source.refresh()).toBe(false)
      const requests = upstream.requests.length
      offset = -3_600_000
      // Before: the run was measured on the wall clock, so the drop was put off by the hour the
      // clock went back, and the revoked definitions were served (200) all that hour. Proxy mode
      // measures its runs on the steady clock, which a step back does not stop.
      await waitFor(() => source.current() === undefined, 3000)
      expect(source.status().ready).toBe(false)
      expect(upstream.requests.length).toBe(requests)
    } finally {
      await source.close()
    }
  })
})

/**
 * Counts the timers armed while `during` runs and `windowMs` after. Node cannot wait past 2^31-1 ms
 * (24.8 days): a longer setTimeout fires after 1 ms (with a TimeoutOverflowWarning), so a timer that
 * looks again when it fired early ran a 1 ms loop for the whole of a clear-after of 30 days.
 */
async function timersArmed(during: () => Promise<void>, windowMs: number): Promise<number> {
  const original = globalThis.setTimeout
  let armed = 0
  globalThis.setTimeout = ((callback: () => void, ms?: number, ...rest: unknown[]) => {
    armed++
    return original(callback, ms, ...rest)
  }) as typeof setTimeout
  try {
    await during()
    await new Promise((resolve) => original(resolve, windowMs))
    return armed
  } finally {
    globalThis.setTimeout = original
  }
}

describe('a clear-after longer than a timer can wait (30 days)', () => {
  const MONTH = 30 * 24 * 3600

  it('proxy mode: the timer waits, no 1 ms loop, and the context stays held', async () => {
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'plan', value: 'pro', reason: 'STATIC' }] }) })
    const source = createUpstreamSource({ url: upstream.url, maxShrinkPercent: 50, onUnauthorized: { mode: 'clear-after', seconds: MONTH }, timeoutMs: 2000, log: recordingLogger() })
    await source.open()
    try {
      const ask = async () => (await source.evaluate!({ context: { targetingKey: 'victim' }, headers: { authorization: 'Bearer revoked' } })).status
      expect(await ask()).toBe(200)
      upstream.set({ status: 401, json: { errorCode: 'UNAUTHORIZED' } })
      // Before: ~300 timers in 300 ms (one a millisecond, each with a warning on stderr).
      expect(await timersArmed(async () => void expect(await ask()).toBe(200), 300)).toBeLessThan(20)
      expect(source.relayStatus!().contexts).toBe(1)
    } finally {
      await source.close()
    }
  })

  it('--flags-url: the timer waits, no 1 ms loop, and the definitions stay served', async () => {
    const upstream = await startUpstream({ document: booleanFlags(3) })
    const source = urlSourceFor(upstream, { pollIntervalMs: 3_600_000, onUnauthorized: { mode: 'clear-after', seconds: MONTH } })
    await source.open()
    try {
      upstream.set({ status: 401, json: { error: 'revoked' } })
      expect(await timersArmed(async () => void expect(await source.refresh()).toBe(false), 300)).toBeLessThan(20)
      expect(source.current()?.flagCount).toBe(3)
    } finally {
      await source.close()
    }
  })
})
