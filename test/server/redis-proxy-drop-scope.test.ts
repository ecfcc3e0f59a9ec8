// Proxy mode with --redis and --on-upstream-unauthorized clear, on a real redis-server: who can
// have a drop marker (d06ecda) written. A drop is of one context hash (the context and every
// forwarded header, the credentials among them), made only for values held under that hash: a
// client with made-up credentials, or with the victim's context and its own made-up key, drops
// nothing of anyone else's, here or in the store.
import { describe, expect, it, vi } from 'vitest'
import { createRedisStore, createSharedContexts, createUpstreamSource, type RelaySource } from '@holdfast/server'
import { useRedisFleet } from './redis-fleet'
import { recordingLogger, waitFor } from './helpers'
import { startUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 })

const { cleanups, redisServer } = useRedisFleet()

describe('proxy mode, clear: a drop\'s scope', () => {
  it('made-up credentials, on the victim\'s context or any other, write no drop and drop nothing of the victim\'s', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream((request) =>
      request.headers.authorization === 'Bearer good' ? { ofrep: () => ({ flags: [{ key: 'plan', value: 'pro', reason: 'STATIC' }] }) } : { status: 401, json: { errorCode: 'UNAUTHORIZED' } },
    )
    const proxy = (): RelaySource => {
      const source = createUpstreamSource({
        url: upstream.url,
        maxShrinkPercent: 50,
        onUnauthorized: { mode: 'clear' },
        timeoutMs: 2000,
        heldAnswerAfterMs: 2000,
        log: recordingLogger(),
        share: (take, held) => createSharedContexts({ store: createRedisStore({ url: redis.url, namespace: 'drop-scope', commandTimeoutMs: 1000 }), take, held }),
      })
      cleanups.push(() => source.close())
      return source
    }
    const ask = async (s: RelaySource, targetingKey: string, authorization: string) => {
      const answer = await s.evaluate!({ context: { targetingKey }, headers: { authorization } } as never)
      return { status: answer.status, value: (answer.body as { flags?: Array<{ value: unknown }> }).flags?.[0]?.value }
    }
    const stored = async () => {
      const keys = (await redis.command('KEYS', 'holdfast:drop-scope:doc:context:*')).split('\r\n').filter((line) => line.startsWith('holdfast:'))
      return Promise.all(keys.map(async (key) => (await redis.command('HGET', key, 'body')).split('\r\n')[1]))
    }

    const a = proxy()
    await a.open()
    await waitFor(() => a.relayStatus().redis?.state === 'up', 10_000)
    expect(await ask(a, 'victim', 'Bearer good')).toEqual({ status: 200, value: 'pro' })
    await waitFor(async () => (await stored()).length === 1, 10_000)

    // The attacker: the victim's context with made-up keys (one the victim's but for its case), and
    // made-up contexts: each refused upstream (401), nothing held for it here (503).
    const refused = []
    for (const authorization of ['Bearer made-up', 'bearer good', '']) refused.push((await ask(a, 'victim', authorization)).status)
    for (let i = 0; i < 20; i++) refused.push((await ask(a, `made-up-${i}`, `Bearer made-up-${i}`)).status)
    expect(new Set(refused)).toEqual(new Set([503]))
    expect(upstream.requests.filter((request) => request.headers.authorization !== 'Bearer good').length).toBeGreaterThanOrEqual(22)
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(await stored()).toEqual([expect.stringContaining('"pro"')])
    expect(a.relayStatus().contexts).toBe(1)

    // In the outage after, the victim is served here and by a relay new to the fleet.
    upstream.set({ status: 503, text: 'down' })
    const b = proxy()
    await b.open()
    await waitFor(() => b.relayStatus().contexts === 1, 10_000)
    for (const s of [a, b]) expect(await ask(s, 'victim', 'Bearer good')).toEqual({ status: 200, value: 'pro' })
  })
})
