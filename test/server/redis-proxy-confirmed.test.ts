// Proxy mode with --redis and --data-dir, on a real redis-server: a relay cut off from Redis (a
// partition: the rest of the fleet still writes there) has its held answer confirmed by the
// upstream (a 304). The data dir must record that confirmation as asked for without a place in the
// store's order, not under the place of the answer it confirms: after a restart during an upstream
// outage, the fleet's copy asked for before that confirmation must not beat it.
import { describe, expect, it, vi } from 'vitest'
import { createGenerationStore, createRedisStore, createSharedContexts, createUpstreamSource, type RelaySource } from '@holdfast/server'
import { startTcpProxy } from '../support/tcpProxy'
import { useRedisFleet } from './redis-fleet'
import { recordingLogger, tempDir, waitFor } from './helpers'
import { startUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 })

const { cleanups, redisServer } = useRedisFleet()

describe('proxy mode: an answer confirmed (304) while cut off from Redis', () => {
  it('keeps its time against a copy the fleet got before it, after a restart in an upstream outage', async () => {
    const redis = await redisServer()
    const cutoff = await startTcpProxy(redis.port)
    cleanups.push(() => cutoff.close())
    let greeting = 'v1'
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'greeting', value: greeting, reason: 'STATIC' }] }) })
    const dir = await tempDir()
    const proxy = (redisUrl: string, dataDir?: string): RelaySource => {
      const source = createUpstreamSource({
        url: upstream.url,
        maxShrinkPercent: 50,
        onUnauthorized: { mode: 'keep' },
        timeoutMs: 1000,
        heldAnswerAfterMs: 1000,
        log: recordingLogger(),
        ...(dataDir ? { store: createGenerationStore({ dir: dataDir }) } : {}),
        share: (take, held) => createSharedContexts({ store: createRedisStore({ url: redisUrl, namespace: 'proxy-confirmed', commandTimeoutMs: 300 }), take, held }),
      })
      cleanups.push(() => source.close())
      return source
    }
    const ask = async (s: RelaySource, targetingKey = 'ada') => {
      const answer = (await s.evaluate!({ context: { targetingKey }, headers: {} } as never)) as { body: { flags?: Array<{ key: string; value: unknown }> } }
      return answer.body.flags?.[0]?.value
    }
    const storedGreeting = async () => {
      const keys = (await redis.command('KEYS', 'holdfast:*:doc:context:*')).split('\r\n').filter((line) => line.startsWith('holdfast:'))
      const bodies = await Promise.all(keys.map(async (key) => (await redis.command('HGET', key, 'body')).split('\r\n')[1]))
      return bodies.map((body) => JSON.parse(body) as { flags: Array<{ value: unknown }> }).map((body) => body.flags[0].value)
    }

    // This relay answers Ada (v1), shares it and saves it, with its place in the store's order.
    const relay = proxy(cutoff.url, dir)
    await relay.open()
    await waitFor(() => relay.relayStatus().redis?.state === 'up', 10_000)
    expect(await ask(relay)).toBe('v1')
    await waitFor(async () => (await storedGreeting()).includes('v1'), 10_000)

    // Cut off from Redis, it misses what another relay of the fleet then gets: the upstream's v2.
    cutoff.cut()
    greeting = 'v2'
    const other = proxy(redis.url)
    await other.open()
    await waitFor(() => other.relayStatus().redis?.state === 'up', 10_000)
    expect(await ask(other)).toBe('v2')
    await waitFor(async () => (await storedGreeting()).includes('v2'), 10_000)
    await other.close()

    // The upstream goes back to v1 and confirms this relay's answer (a 304 to its ETag); another
    // user's first answer has the data dir written with it.
    greeting = 'v1'
    await new Promise((resolve) => setTimeout(resolve, 50))
    const before = upstream.requests.length
    expect(await ask(relay)).toBe('v1')
    expect(upstream.requests.length).toBe(before + 1)
    const savedBefore = relay.relayStatus().dataDir?.lastGeneration ?? 0
    expect(await ask(relay, 'grace')).toBe('v1')
    await waitFor(() => (relay.relayStatus().dataDir?.lastGeneration ?? 0) > savedBefore, 10_000)
    await relay.close()

    // The upstream goes down; the relay restarts from its data dir, Redis reachable again.
    upstream.set({ status: 503, text: 'down' })
    const restarted = proxy(redis.url, dir)
    await restarted.open()
    await waitFor(() => restarted.relayStatus().redis?.state === 'up', 10_000)
    await new Promise((resolve) => setTimeout(resolve, 500))
    // Before: the confirmation kept the store version of the answer it confirmed, so the fleet's
    // copy asked for after that answer (but before the confirmation) won by the store's order,
    // and the relay served v2, which the upstream had gone back from.
    expect(await ask(restarted)).toBe('v1')
  })
})
