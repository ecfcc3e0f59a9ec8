// Pub/sub after Redis comes back, for two holdfast-server commands on --flags-url sharing a real
// redis-server (CONTRACT §9 --redis: "the others take new definitions from Redis at once (pub/sub)").
// Both connections' clients are made with the offline queue off (29d82d0); node-redis keeps its
// subscriptions across a reconnect in that queue's state. Here Redis is killed (-9) and started
// again empty on the same port, or is down when the relays start and comes up later; then a change
// the leader is told to fetch (POST /holdfast/v1/refresh) must reach the follower within 1 s, while
// its own periodic read (--poll-interval 60) is a minute away: only a notice can bring it.
import { describe, expect, it, vi } from 'vitest'
import { startRedisServer, type RedisServer } from '../support/redisServer'
import { relay } from './log-relay'
import { status, values } from './redis-fleet'
import { waitFor } from './helpers'
import { booleanFlags, startUpstream, type FakeUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 90_000, hookTimeout: 60_000 })

const ADMIN = 'admin-key-for-this-test'

async function fleet(redis: RedisServer, upstream: FakeUpstream) {
  const args = ['--flags-url', `${upstream.url}/flags.json`, '--redis', redis.url, '--redis-lease-ttl', '10', '--poll-interval', '60', '--admin-key', ADMIN]
  return [await relay(args), await relay(args)]
}

/** [leader, follower] by their status, once both say Redis is up (both connections: notices flow). */
async function settled(urls: string[]): Promise<[string, string]> {
  let roles: unknown[] = []
  await waitFor(async () => {
    const all = await Promise.all(urls.map(status))
    roles = all.map((s) => s.redis?.role)
    return all.every((s) => s.redis?.state === 'up') && roles.includes('leader') && roles.includes('follower')
  }, 30_000)
  return [urls[roles.indexOf('leader')]!, urls[roles.indexOf('follower')]!]
}

/** Changes the upstream, has the leader fetch it now, and returns how long the follower took to serve it. */
async function changeReaches(upstream: FakeUpstream, leader: string, follower: string, on: boolean): Promise<number> {
  upstream.set({ document: booleanFlags(3, on ? 'on' : 'off') })
  const started = Date.now()
  const refreshed = await fetch(`${leader}/holdfast/v1/refresh`, { method: 'POST', headers: { Authorization: `Bearer ${ADMIN}` } })
  expect(refreshed.status).toBeLessThan(300)
  await waitFor(async () => (await values(leader)).flags.f0 === on, 10_000)
  await waitFor(async () => (await values(follower)).flags.f0 === on, 10_000)
  return Date.now() - started
}

describe('pub/sub after Redis comes back (two holdfast-server commands, --flags-url, --redis)', () => {
  it('Redis killed (-9) and started again empty on the same port: a change the leader fetches reaches the follower within 1 s', async () => {
    const redis = await startRedisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    try {
      const relays = await fleet(redis, upstream)
      let [leader, follower] = await settled(relays.map((r) => r.url))
      // Notices flow before the restart.
      expect(await changeReaches(upstream, leader, follower, true)).toBeLessThan(1000)

      await redis.stop({ kill9: true })
      for (const r of relays) await waitFor(async () => (await status(r.url)).redis.state === 'down', 15_000)
      await redis.start()
      ;[leader, follower] = await settled(relays.map((r) => r.url))
      expect(await changeReaches(upstream, leader, follower, false)).toBeLessThan(1000)
      expect(await changeReaches(upstream, leader, follower, true)).toBeLessThan(1000)
    } finally {
      await redis.stop()
      await upstream.close()
    }
  })

  it('Redis down when both relays start, up later: a change the leader fetches reaches the follower within 1 s', async () => {
    const redis = await startRedisServer()
    await redis.stop()
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    try {
      const relays = await fleet(redis, upstream)
      for (const r of relays) expect((await status(r.url)).redis.state).not.toBe('up')
      await redis.start()
      const [leader, follower] = await settled(relays.map((r) => r.url))
      expect(await changeReaches(upstream, leader, follower, true)).toBeLessThan(1000)
    } finally {
      await redis.stop()
      await upstream.close()
    }
  })
})
