// Live updates across a fleet of --flags-url relays sharing a real redis-server (CONTRACT §9–§10):
// a browser's stream may be on any relay of the fleet, so what the leader's streams are promised
// (a change within a bound, the end of an outage spread over the recovery window, no storm when
// Redis comes back) must hold on a follower's streams too.
import { describe, expect, it, vi } from 'vitest'
import type { FlagServer } from '@holdfast/server'
import { role, settled, status, TTL_MS, useRedisFleet, values } from './redis-fleet'
import { timed, waitFor } from './helpers'
import { startTcpProxy } from '../support/tcpProxy'
import { booleanFlags, startUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 90_000, hookTimeout: 60_000 })

const { redisServer, relay } = useRedisFleet()

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
  const etags = () => [...text.matchAll(/"etag":"([^"]+)"/g)].map((m) => m[1])
  return { arrivals, etags, count: () => arrivals.length, close: () => controller.abort() }
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
      expect(onFollower.filter((s) => s.count() > 0).length).toBeLessThanOrEqual(5)
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

  it('a change upstream reaches a stream on a follower within one poll interval of reaching the leader\'s, not a poll interval later', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    // A poll every 2 s: the leader finds the change within 2 s (plus the upstream's answer); the
    // follower does not poll, and hears of it from Redis (pub/sub), not on a schedule of its own.
    const pollMs = 2000
    const fleet = await settled([await relay(redis, upstream, { pollIntervalSeconds: pollMs / 1000 }), await relay(redis, upstream, { pollIntervalSeconds: pollMs / 1000 })])
    const [leader, follower] = fleet
    await waitFor(async () => (await values(follower.server)).flags.f0 === false, 10_000)
    const onLeader = await stream(leader.server)
    const onFollower = await stream(follower.server)
    try {
      for (const [i, variant] of (['on', 'off', 'on'] as const).entries()) {
        const changed = Date.now()
        upstream.set({ document: booleanFlags(3, variant) })
        await waitFor(() => onLeader.count() > i && onFollower.count() > i, pollMs + 5000)
        // The leader: one poll interval, plus what the machine adds (a loaded 2-core box).
        expect(onLeader.arrivals[i] - changed).toBeLessThan(pollMs + 1000)
        // The follower: the store's notice, a read and a compile after the leader's (measured
        // in tens of ms); a follower that waited for a poll of its own would be 2 s late.
        expect(onFollower.arrivals[i] - onLeader.arrivals[i]).toBeLessThan(pollMs / 2)
        expect((await values(follower.server)).flags.f0).toBe(variant === 'on')
      }
      expect(follower.polls()).toBe(0)
    } finally {
      onLeader.close()
      onFollower.close()
    }
  })

  it('Redis killed (SIGKILL) under open streams: a change still reaches the streams of both relays, the status says Redis is down, and Redis back empty sends no notice', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    const relays = await settled([await relay(redis, upstream), await relay(redis, upstream)])
    const [, follower] = relays
    await waitFor(async () => (await values(follower.server)).flags.f0 === false, 10_000)
    const streams = await Promise.all(relays.map((r) => stream(r.server)))
    try {
      await redis.stop({ kill9: true })
      const killed = Date.now()
      upstream.set({ document: booleanFlags(3, 'on') })
      // Each relay polls on its own once it has gone a lease TTL without Redis (role solo), then
      // within a poll interval (0.2 s): bounded by TTL + poll + the store's command timeouts.
      await waitFor(() => streams.every((s) => s.count() === 1), TTL_MS * 2 + 5000)
      expect(Date.now() - killed).toBeLessThan(TTL_MS * 2 + 5000)
      for (const r of relays) {
        // A follower may take the change by a poll of its own (its leader silent) a moment before
        // its lease keeper, a TTL without Redis, calls it solo: on a loaded machine the status
        // still said follower here. The role follows within the same bound.
        await waitFor(async () => (await status(r.server)).redis.role === 'solo', TTL_MS * 2 + 5000).catch(() => undefined)
        const body = await status(r.server)
        expect(body.redis).toMatchObject({ state: 'down', role: 'solo' })
        expect(body.upstream.state).toBe('ok')
        expect(await values(r.server)).toMatchObject({ flags: { f0: true }, holdfast: { stale: false } })
      }
      await redis.start() // empty
      await settled(relays)
      for (const r of relays) await waitFor(async () => (await status(r.server)).redis.state === 'up', 20_000)
      await waitFor(async () => (await redis.command('KEYS', 'holdfast:*:doc:definitions')).includes('definitions'), 10_000)
      // Nothing changed upstream: the store refilled from what the relays serve is no change to announce.
      await new Promise((r) => setTimeout(r, 1000))
      expect(streams.map((s) => s.count())).toEqual([1, 1])
      // And changes flow through the store again.
      upstream.set({ document: booleanFlags(3, 'off') })
      await waitFor(() => streams.every((s) => s.count() === 2), 5000)
    } finally {
      for (const s of streams) s.close()
    }
  })

  it('a follower whose subscription went silent (a half-open connection: nothing arrives, nothing fails) still takes a change within a poll interval or so, and does not read its leader as silent', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    const proxy = await startTcpProxy(redis.port)
    try {
      const pollMs = 500
      const leader = await relay(redis, upstream, { pollIntervalSeconds: pollMs / 1000 })
      await waitFor(async () => (await role(leader.server)) === 'leader', 20_000)
      const follower = await relay(redis, upstream, { pollIntervalSeconds: pollMs / 1000, redis: { url: proxy.url, leaseTtlMs: TTL_MS, commandTimeoutMs: 300 } })
      await waitFor(async () => (await role(follower.server)) === 'follower' && (await values(follower.server)).holdfast?.stale === false, 20_000)
      const onFollower = await stream(follower.server)
      // The follower's subscription stops delivering: its TCP connection still open, nothing sent;
      // and so does every subscription it makes again (a path that loses them all).
      proxy.silenceSubscribers(true)
      let staleSeen = false
      const watching = setInterval(() => void values(follower.server).then((v) => (staleSeen ||= v.holdfast?.stale === true), () => undefined), 100)
      try {
        await new Promise((r) => setTimeout(r, 6000))
        // The leader's reports, which come every poll, are read without the notices: the follower
        // does not call its healthy leader silent (stale) in between.
        expect(staleSeen).toBe(false)
        const changed = Date.now()
        upstream.set({ document: booleanFlags(3, 'on') })
        await waitFor(() => onFollower.count() >= 1, 10_000)
        // Before: only the follower's fixed 5 s check of the store's versions caught it, ten
        // poll intervals late. Now it checks every poll interval: the leader's poll, then one
        // interval at most, plus the machine's slack.
        expect(Date.now() - changed).toBeLessThan(2 * pollMs + 1000)
        expect((await values(follower.server)).flags.f0).toBe(true)
      } finally {
        clearInterval(watching)
        onFollower.close()
      }
    } finally {
      await proxy.close()
    }
  })

  it('the refetch a notice asked for, landing on a relay that has not taken the version yet, is answered from that version, not the old one', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    const proxy = await startTcpProxy(redis.port)
    try {
      // The follower takes new versions only at its check, every poll interval (1 s): its
      // subscription is deaf, as it would be a few ms behind at best with a working one.
      const leader = await relay(redis, upstream, { pollIntervalSeconds: 1 })
      await waitFor(async () => (await role(leader.server)) === 'leader', 20_000)
      const follower = await relay(redis, upstream, { pollIntervalSeconds: 1, redis: { url: proxy.url, leaseTtlMs: TTL_MS, commandTimeoutMs: 300 } })
      await waitFor(async () => (await role(follower.server)) === 'follower' && (await values(follower.server)).flags.f0 === false, 20_000)
      proxy.silenceSubscribers(true)
      const oldVersion = (await status(follower.server)).version as string
      const onLeader = await stream(leader.server)
      try {
        upstream.set({ document: booleanFlags(3, 'on') })
        await waitFor(() => onLeader.count() >= 1, 10_000)
        // The tab's refetch goes through the load balancer to the follower, naming the version.
        const etag = onLeader.etags()[0]
        const refetch = async (version: string) => {
          const response = await fetch(`${follower.server.url}/ofrep/v1/evaluate/flags?flagConfigEtag=${encodeURIComponent(version)}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ context: { targetingKey: 'u1' } }) })
          return { status: response.status, body: (await response.json()) as { flags: Array<{ key: string; value: unknown }> } }
        }
        // Bounds on time this process ran or waited, not on time a loaded machine froze it (timed).
        const answer = await timed(() => refetch(etag))
        // Before: answered at once from the old version: the tab applied f0 = false and, its
        // notice spent, heard nothing more (the leader had announced the version already).
        expect(answer.value.status).toBe(200)
        expect(answer.value.body.flags.find((f) => f.key === 'f0')?.value).toBe(true)
        expect(answer.ms).toBeLessThan(2500)
        // A version this relay served before (an old notice) is not waited for.
        const old = await timed(() => refetch(oldVersion))
        expect(old.value.status).toBe(200)
        expect(old.ms).toBeLessThan(500)
        // One it never serves is waited for 2 s at most.
        const unknown = await timed(() => refetch('no-such-version'))
        expect(unknown.value.status).toBe(200)
        expect(unknown.ms).toBeLessThan(3000)
      } finally {
        onLeader.close()
      }
    } finally {
      await proxy.close()
    }
  })
})
