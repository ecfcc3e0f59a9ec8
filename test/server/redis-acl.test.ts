// A Redis whose ACL lets the relays' user do less than they need: an operator who scoped the
// user to the relays' keys (`~holdfast:*`) and forgot their notice channel (Redis 7 grants no
// channel to a new user by default), or a password that is wrong. Each test starts its own redis-server.
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

  it('a wrong password: the status names the refusal for as long as it lasts, not "The client is offline"', async () => {
    const redis = await redisServer()
    expect(await redis.command('ACL', 'SETUSER', 'relay', 'on', '>pw', '~*', 'allchannels', '+@all')).toBe('+OK\r\n')
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    const a = await relay({ ...redis, url: redis.url.replace('redis://', 'redis://relay:wrong@') }, upstream)
    await waitFor(async () => (await values(a.server)).flags.f0 === false, 10_000)
    await waitFor(async () => (await status(a.server)).redis.state === 'down', 10_000)
    // Through heartbeats, polls and reconnects (each command fails at once while the client is
    // not connected) the reason is the one Redis gave, every time the status is asked.
    const said = new Set<string>()
    const until = Date.now() + 3000
    while (Date.now() < until) {
      said.add((await status(a.server)).redis.lastError)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    expect([...said].filter((error) => !/WRONGPASS|invalid username-password/.test(error ?? ''))).toEqual([])
  })
})

describe('a Redis user the ACL denies scripting', () => {
  it('every script refused (NOPERM): the relays say down and why, steadily, and say up once scripting is granted, without a restart', async () => {
    const redis = await redisServer()
    // The keys and channels granted, every command but the scripting ones: PING, SCAN and SUBSCRIBE answer.
    expect(await redis.command('ACL', 'SETUSER', 'relay', 'on', '>pw', '~*', 'allchannels', '+@all', '-@scripting')).toBe('+OK\r\n')
    const fleetRedis = { ...redis, url: redis.url.replace('redis://', 'redis://relay:pw@') }
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    const a = await relay(fleetRedis, upstream)
    await waitFor(async () => (await values(a.server)).flags.f0 === false, 10_000)
    await waitFor(async () => /NOPERM/.test((await status(a.server)).redis.lastError ?? ''), 10_000)
    // No lease can be taken and nothing shared: no moment may say up (heartbeat PINGs answered between).
    const until = Date.now() + 3000
    while (Date.now() < until) {
      const seen = await status(a.server)
      expect(seen.redis.state).toBe('down')
      expect(seen.redis.lastError).toMatch(/NOPERM/)
      expect(await (await fetch(`${a.server.url}/metrics`)).text()).toMatch(/^holdfast_redis_up 0$/m)
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    expect((await status(a.server)).redis.role).toBe('solo')
    // Granted: up and leading, no restart.
    const refusedUntil = (await status(a.server)).redis.lastErrorAt as number
    expect(refusedUntil).toBeGreaterThan(Date.now() - 10_000)
    expect(await redis.command('ACL', 'SETUSER', 'relay', '+@scripting')).toBe('+OK\r\n')
    await waitFor(async () => (await status(a.server)).redis.state === 'up' && (await status(a.server)).redis.role === 'leader', 10_000)
    expect(await (await fetch(`${a.server.url}/metrics`)).text()).toMatch(/^holdfast_redis_up 1$/m)
    // The refusal stays named once up (what happened last), with when: before, `lastError` alone
    // said NOPERM under `state: up`, and nothing told an operator whether it was now or last week.
    await new Promise((resolve) => setTimeout(resolve, 500))
    const up = (await status(a.server)).redis
    expect(up).toMatchObject({ state: 'up', lastError: expect.stringMatching(/NOPERM/), lastErrorAt: expect.any(Number) })
    expect(up.lastErrorAt).toBeGreaterThanOrEqual(refusedUntil)
    expect(up.lastErrorAt).toBeLessThan(up.lastOkAt)
  })
})
