// Redis full under maxmemory with the noeviction policy: every write is refused (OOM) while reads
// still work. The relays keep serving the newest flags, say why nothing reaches Redis, and once
// memory frees the newest version is in Redis again. Real redis-server and fake upstream on 127.0.0.1.
import { createClient } from 'redis'
import { describe, expect, it, vi } from 'vitest'
import { status, useRedisFleet, values } from './redis-fleet'
import { evaluate, recordingLogger, startServer, waitFor } from './helpers'
import { booleanFlags, startUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 30_000, hookTimeout: 30_000 })

const { cleanups, redisServer, relay } = useRedisFleet()

/** Another tenant fills Redis past a limit set below what it holds: every write is refused (OOM). Returns what frees it. */
async function fillRedis(url: string): Promise<() => Promise<void>> {
  const client = createClient({ url })
  await client.connect()
  cleanups.push(() => client.close())
  const filled = 500
  const filler = 'x'.repeat(4096)
  await Promise.all(Array.from({ length: filled }, (_, i) => client.set(`other:${i}`, filler)))
  await client.configSet({ maxmemory: '1mb', 'maxmemory-policy': 'noeviction' })
  await expect(client.set('probe', 'x')).rejects.toThrow(/OOM/)
  return async () => {
    await client.del(Array.from({ length: filled }, (_, i) => `other:${i}`))
    await client.configSet({ maxmemory: '64mb' })
  }
}

describe('Redis full (maxmemory, noeviction)', () => {
  it('serving goes on with the newest flags, the status and metrics say OOM, and nothing is lost once memory frees', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ document: booleanFlags(3, 'off') })
    const logger = recordingLogger()
    const relays = [await relay(redis, upstream, { logger }), await relay(redis, upstream)]
    for (const r of relays) await waitFor(async () => (await values(r.server)).flags.f0 === false, 10_000)
    const free = await fillRedis(redis.url)
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
    await free()
    await waitFor(async () => (await redis.command('HGET', key, 'body').catch(() => '')).includes('"f3"'), 10_000)
    upstream.set({ status: 503, text: 'down' })
    const late = await relay(redis, upstream)
    expect((await values(late.server)).flags.f3).toBe(true)
  })

  // Proxy mode: an answer Redis refused (OOM) is owed and written again, but only while the store
  // says up, and a refusal kept it down for 30 s after it was last refused. With the upstream down
  // (no new answer to write, the very time shared answers matter), the answer stayed out of Redis
  // for 30-60 s after memory freed: a relay started meanwhile could not serve it.
  it('proxy mode: an answer refused for OOM reaches Redis within seconds once memory frees, not after the 30 s refusal hold', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ ofrep: (context) => ({ flags: [{ key: 'greeting', value: `hello ${String(context.targetingKey)}`, reason: 'STATIC' }] }) })
    const proxy = () => startServer({ flags: undefined, upstream: upstream.url, upstreamTimeoutMs: 2000, logger: recordingLogger(), redis: { url: redis.url, commandTimeoutMs: 1000 } })
    const ask = async (server: Awaited<ReturnType<typeof proxy>>) => {
      const body = (await (await evaluate(server, { targetingKey: 'ada' })).json()) as { flags?: Array<{ key: string; value: unknown }> }
      return body.flags?.find((f) => f.key === 'greeting')?.value
    }
    const first = await proxy()
    cleanups.push(() => first.close())
    await waitFor(async () => (await status(first)).redis?.state === 'up', 10_000)
    const free = await fillRedis(redis.url)
    expect(await ask(first)).toBe('hello ada')
    // Refused for OOM (on a loaded machine the first write may time out instead: its retry is refused).
    await waitFor(async () => {
      const redis = (await status(first)).redis
      return redis?.unshared === 1 && /OOM/.test(redis.lastError ?? '')
    }, 10_000)
    // The upstream goes down (nothing new to share), then memory frees.
    upstream.set({ status: 503, text: 'down' })
    await free()
    const freedAt = Date.now()
    // (`unshared` reads 0 while the retry's writes are on their way: Redis is what is checked.)
    await waitFor(async () => (await redis.command('KEYS', 'holdfast:*:doc:context:*')) !== '*0\r\n', 20_000)
    // After 1 s, doubling while refused: a few seconds, not the hold's 30 s.
    expect(Date.now() - freedAt).toBeLessThan(10_000)
    await waitFor(async () => (await status(first)).redis?.unshared === 0, 5000)
    const second = await proxy()
    cleanups.push(() => second.close())
    await waitFor(async () => (await ask(second)) === 'hello ada', 10_000)
  })
})
