// Live updates across a fleet of --flags-url relays sharing a real redis-server (CONTRACT §9–§10):
// a browser's stream may be on any relay of the fleet, so what the leader's streams are promised
// (a change within a bound, the end of an outage spread over the recovery window, no storm when
// Redis comes back) must hold on a follower's streams too.
import { describe, expect, it, vi } from 'vitest'
import type { FlagServer } from '@holdfast/server'
import { role, status, TTL_MS, useRedisFleet, values, type Relay } from './redis-fleet'
import { waitFor } from './helpers'
import { booleanFlags, startUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 90_000, hookTimeout: 60_000 })

const { redisServer, relay } = useRedisFleet()

/** Waits until exactly one of the relays leads and the others follow; returns [leader, ...followers]. */
async function settled(relays: Relay[]): Promise<Relay[]> {
  let roles: Array<string | undefined> = []
  await waitFor(async () => {
    roles = await Promise.all(relays.map((r) => role(r.server)))
    return roles.filter((r) => r === 'leader').length === 1 && roles.every((r) => r === 'leader' || r === 'follower')
  }, 20_000)
  const leader = relays[roles.indexOf('leader')]
  return [leader, ...relays.filter((r) => r !== leader)]
}

/** Opens the event stream of `server` and records when each change notice arrives. */
async function stream(server: FlagServer) {
  const controller = new AbortController()
  const response = await fetch(`${server.url}/holdfast/v1/stream`, { signal: controller.signal })
  expect(response.status).toBe(200)
  const arrivals: number[] = []
  let opened = false
  let text = ''
  void (async () => {
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        text += Buffer.from(chunk).toString()
        opened = true
        const count = text.split('"type":"refetchEvaluation"').length - 1
        while (arrivals.length < count) arrivals.push(Date.now())
      }
    } catch {
      // aborted
    }
  })()
  await waitFor(() => opened, 5000)
  return { arrivals, count: () => arrivals.length, close: () => controller.abort() }
}

/** An injected jitter source: 0, 1/n, 2/n, … so n streams' delays cover the window evenly. */
function evenly(n: number): () => number {
  let i = 0
  return () => (i++ % n) / n
}

describe('live updates on a follower relay', () => {
  it('the notices that end an upstream outage are spread over the recovery window on a follower too, not sent in one instant', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    const windowMs = 3000
    const liveUpdates = () => ({ recoveryWindowMs: windowMs, random: evenly(20) })
    const [leader, follower] = await settled([await relay(redis, upstream, { liveUpdates: liveUpdates() }), await relay(redis, upstream, { liveUpdates: liveUpdates() })])
    await waitFor(async () => (await values(follower.server)).flags.f0 === false, 10_000)
    const onFollower = await Promise.all(Array.from({ length: 20 }, () => stream(follower.server)))
    const onLeader = await Promise.all(Array.from({ length: 20 }, () => stream(leader.server)))
    try {
      upstream.set({ status: 503, text: 'down for maintenance' })
      await waitFor(async () => (await status(follower.server)).upstream.state === 'failing', 10_000)
      upstream.set({ document: booleanFlags(3, 'on') })
      await waitFor(async () => (await values(follower.server)).flags.f0 === true, 10_000)
      const served = Date.now()
      // Before: the follower wrote its 20 notices the instant it took the new version from Redis,
      // so every browser on it refetched at once (a flood on the follower after every outage).
      expect(onFollower.filter((s) => s.count() > 0).length).toBeLessThanOrEqual(2)
      for (const streams of [onFollower, onLeader]) await waitFor(() => streams.every((s) => s.count() === 1), windowMs + 5000)
      for (const streams of [onFollower, onLeader]) {
        const times = streams.map((s) => s.arrivals[0]).sort((x, y) => x - y)
        // Delays of 0, 150, …, 2850 ms: the last notice goes out more than 2 s after the first,
        // and no 250 ms holds more than a quarter of them.
        expect(times[times.length - 1] - times[0]).toBeGreaterThan(2000)
        const crowd = Math.max(...times.map((t) => times.filter((u) => u >= t && u < t + 250).length))
        expect(crowd).toBeLessThanOrEqual(5)
      }
      expect(Date.now() - served).toBeLessThan(windowMs + 5000)
    } finally {
      for (const s of [...onFollower, ...onLeader]) s.close()
    }
  })
})
