// Redis full under maxmemory with the noeviction policy: every write is refused (OOM) while reads
// still work. The relays keep serving the newest flags, say why nothing reaches Redis, and once
// memory frees the newest version is in Redis again. Real redis-server and fake upstream on 127.0.0.1.
import { createClient } from 'redis'
import { describe, expect, it, vi } from 'vitest'
import { status, useRedisFleet, values } from './redis-fleet'
import { recordingLogger, waitFor } from './helpers'
import { booleanFlags, startUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 30_000, hookTimeout: 30_000 })

const { cleanups, redisServer, relay } = useRedisFleet()

describe('Redis full (maxmemory, noeviction)', () => {
  it('serving goes on with the newest flags, the status and metrics say OOM, and nothing is lost once memory frees', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    const logger = recordingLogger()
    const relays = [await relay(redis, upstream, { logger }), await relay(redis, upstream)]
    for (const r of relays) await waitFor(async () => (await values(r.server)).flags.f0 === false, 10_000)
    const client = createClient({ url: redis.url })
    await client.connect()
    cleanups.push(() => client.close())
    // Another tenant fills Redis past a limit set below what it holds: every write is refused.
    const filled = 500
    const filler = 'x'.repeat(4096)
    await Promise.all(Array.from({ length: filled }, (_, i) => client.set(`other:${i}`, filler)))
    await client.configSet({ maxmemory: '1mb', 'maxmemory-policy': 'noeviction' })
    await expect(client.set('probe', 'x')).rejects.toThrow(/OOM/)
    upstream.set({ document: booleanFlags(4, 'on') })
    for (const r of relays) await waitFor(async () => (await values(r.server)).flags.f3 === true, 10_000)
    await waitFor(async () => (await Promise.all(relays.map(async (r) => (await status(r.server)).redis?.lastError ?? ''))).some((e) => /OOM/.test(e)), 10_000)
    const metrics = await (await fetch(`${relays[0]!.server.url}/metrics`)).text()
    expect(Number(/holdfast_redis_command_failures_total (\d+)/.exec(metrics)?.[1])).toBeGreaterThan(0)
    expect(await redis.command('KEYS', 'holdfast:*:doc:definitions')).not.toBe('*0\r\n')
    const key = (await redis.command('KEYS', 'holdfast:*:doc:definitions')).split('\r\n')[2]!
    expect(await redis.command('HGET', key, 'body')).not.toContain('"f3"')
    // Said once, not once per command (each script names itself in Redis' message).
    await waitFor(() => logger.lines.some((line) => /refused a command: OOM/.test(line)), 5000)
    await new Promise((resolve) => setTimeout(resolve, 1000))
    expect(logger.lines.filter((line) => /refused a command/.test(line))).toHaveLength(1)

    // Memory frees (the other tenant's keys go, the limit is raised): the newest flags reach Redis
    // without any change upstream, so a relay that starts while the upstream is down serves them.
    await client.del(Array.from({ length: filled }, (_, i) => `other:${i}`))
    await client.configSet({ maxmemory: '64mb' })
    await waitFor(async () => (await redis.command('HGET', key, 'body').catch(() => '')).includes('"f3"'), 10_000)
    upstream.set({ status: 503, text: 'down' })
    const late = await relay(redis, upstream)
    expect((await values(late.server)).flags.f3).toBe(true)
  })
})
