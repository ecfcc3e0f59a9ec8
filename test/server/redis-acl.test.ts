// A Redis whose ACL lets the relays' user do less than they need: an operator who scoped the
// user to the relays' keys (`~holdfast:*`) and forgot their notice channel (Redis 7 grants no
// channel to a new user by default). Each test starts its own redis-server.
import { describe, expect, it, vi } from 'vitest'
import { status, useRedisFleet, values } from './redis-fleet'
import { waitFor } from './helpers'
import { booleanFlags, startUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 })

const { redisServer, relay } = useRedisFleet()

describe('a Redis user the ACL cuts short', () => {
  it('no permission on the notice channel: the status says down and why; once granted, the relays subscribe without a restart', async () => {
    const redis = await redisServer()
    expect(await redis.command('ACL', 'SETUSER', 'relay', 'on', '>pw', '~holdfast:*', 'resetchannels', '+@all')).toBe('+OK\r\n')
    const fleetRedis = { ...redis, url: redis.url.replace('redis://', 'redis://relay:pw@') }
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    const relays = [await relay(fleetRedis, upstream), await relay(fleetRedis, upstream)]
    for (const r of relays) await waitFor(async () => (await values(r.server)).flags.f0 === false, 10_000)
    // No notice can reach any relay: none may say it is up, or connecting for good with no reason.
    for (const r of relays) {
      await waitFor(async () => /channel/.test((await status(r.server)).redis.lastError ?? ''), 10_000)
      expect((await status(r.server)).redis.state).toBe('down')
      expect(await (await fetch(`${r.server.url}/metrics`)).text()).toMatch(/^holdfast_redis_up 0$/m)
    }
    // The operator grants the channel: every relay subscribes (no restart) and says up.
    expect(await redis.command('ACL', 'SETUSER', 'relay', 'allchannels')).toBe('+OK\r\n')
    for (const r of relays) await waitFor(async () => (await status(r.server)).redis.state === 'up', 10_000)
    const channel = (await redis.command('PUBSUB', 'CHANNELS', 'holdfast:*:notices')).split('\r\n')[2]
    expect(await redis.command('PUBSUB', 'NUMSUB', channel)).toMatch(/:2\r\n$/)
    upstream.set({ document: booleanFlags(3, 'on') })
    for (const r of relays) await waitFor(async () => (await values(r.server)).flags.f0 === true, 10_000)
  })
})
