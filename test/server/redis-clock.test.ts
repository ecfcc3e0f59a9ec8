// Relays on one Redis whose clocks disagree by hours. The lease is timed by Redis (PTTL) and each
// relay's monotonic clock; what a follower shows about freshness is on its own clock: never in its
// future, never a negative or frozen age. Real redis-server and fake upstream on 127.0.0.1.
import { describe, expect, it, vi } from 'vitest'
import { createRedisStore, createSharedDefinitions } from '@holdfast/server'
import { useRedisFleet } from './redis-fleet'
import { waitFor } from './helpers'
import { booleanFlags, startUpstream, urlSourceFor } from './relay-fakes'

vi.setConfig({ testTimeout: 30_000, hookTimeout: 30_000 })

const { cleanups, redisServer } = useRedisFleet()
const HOURS = 3 * 3600_000

describe('a leader whose clock is hours ahead', () => {
  it("a follower's fetchedAt and age stay on the follower's clock: not in its future, and the age grows", async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    const source = (now: () => number) => {
      const s = urlSourceFor(upstream, {
        now,
        share: (hooks) => createSharedDefinitions({ store: createRedisStore({ url: redis.url, namespace: 'clock', commandTimeoutMs: 300 }), leaseTtlMs: 1500, ...hooks }),
      })
      cleanups.push(() => s.close())
      return s
    }
    const ahead = source(() => Date.now() + HOURS)
    await ahead.open()
    await waitFor(() => ahead.relayStatus().redis?.role === 'leader', 10_000)
    // The follower's clock, driven by the test.
    let clock = Date.now()
    const follower = source(() => clock)
    await follower.open()
    await waitFor(() => follower.relayStatus().redis?.role === 'follower' && follower.relayStatus().ready, 10_000)
    upstream.set({ document: booleanFlags(3, 'on') })
    await waitFor(() => (follower.relayStatus().redis?.taken ?? 0) >= 2, 10_000)
    // A report from the leader confirms it as well.
    await new Promise((resolve) => setTimeout(resolve, 500))
    clock = Date.now()
    const first = follower.relayStatus()
    expect(first.fetchedAt).toBeLessThanOrEqual(clock)
    expect(follower.freshness()!.fetchedAt).toBeLessThanOrEqual(clock)
    // The upstream goes down: nothing confirms the flags any more. Ten minutes later on the
    // follower's clock they are ten minutes old, not "just fetched" for the next three hours.
    upstream.set({ status: 503, text: 'down' })
    await waitFor(() => follower.relayStatus().upstream.state === 'failing', 10_000)
    clock += 10 * 60_000
    expect(follower.relayStatus().ageSeconds).toBeGreaterThanOrEqual(600)
  })
})
