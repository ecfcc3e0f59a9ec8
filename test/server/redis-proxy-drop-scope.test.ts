// Proxy mode with --redis and --on-upstream-unauthorized clear, on a real redis-server: who can
// have a drop marker (d06ecda) written. A drop is of one context hash (the context and every
// forwarded header, the credentials among them), made only for values held under that hash: a
// client with made-up credentials, or with the victim's context and its own made-up key, drops
// nothing of anyone else's, here or in the store.
import { describe, expect, it, vi } from 'vitest'
import { createRedisStore, type RelaySource } from '@holdfast/server'
import { askSource, clearSource, PRO, storedBodies } from './dropFixtures'
import { useRedisFleet } from './redis-fleet'
import { waitFor } from './helpers'
import { startUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 })

const { cleanups, redisServer } = useRedisFleet()

describe('proxy mode, clear: a drop\'s scope', () => {
  it('made-up credentials, on the victim\'s context or any other, write no drop and drop nothing of the victim\'s', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream((request) =>
      request.headers.authorization === 'Bearer good' ? PRO : { status: 401, json: { errorCode: 'UNAUTHORIZED' } },
    )
    const proxy = (): RelaySource => clearSource(upstream, 2000, () => createRedisStore({ url: redis.url, namespace: 'drop-scope', commandTimeoutMs: 1000 }), cleanups)
    const ask = (s: RelaySource, targetingKey: string, authorization: string) => askSource(s, targetingKey, { authorization })
    const stored = () => storedBodies(redis, 'holdfast:drop-scope:doc:context:*')

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
