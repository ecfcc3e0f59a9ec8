// relay-drop-inflight.test.ts with --redis, on a real redis-server that refuses writes (its
// maxmemory) when a round drops a revoked key's contexts: the victim's request, sent before the
// 401 and answered 200 after its drop, must not end the drop still owed to the store, nor go into
// the store in its place (the whole fleet would take the revoked user's values from before).
import { describe, expect, it, vi } from 'vitest'
import { fillRedis, startHoldingUpstream, storedBodies } from './dropFixtures'
import { useRedisFleet } from './redis-fleet'
import { evaluate, startServer, waitFor } from './helpers'

vi.setConfig({ testTimeout: 60_000 })

const { cleanups, redisServer } = useRedisFleet()
const KEY = { Authorization: 'Bearer shared' }

describe('--redis: an answer asked for before a drop Redis refused, got after it', () => {
  it('neither ends the drop nor is written to the store: the store holds the drop once Redis takes writes again', async () => {
    const redis = await redisServer()
    const upstream = await startHoldingUpstream('victim')
    const relay = await startServer({ flags: undefined, upstream: upstream.url, adminKey: 'adm', onUpstreamUnauthorized: 'clear', redis: { url: redis.url, commandTimeoutMs: 1000 } })
    const status = async () => (await (await fetch(`${relay.url}/holdfast/v1/status`)).json()) as { contexts: number; redis?: { state: string; unshared: number } }
    await waitFor(async () => (await status()).redis?.state === 'up', 20_000)
    const stored = () => storedBodies(redis, 'holdfast:*context:*')
    for (let i = 0; i < 3; i++) await (await evaluate(relay, { targetingKey: `a${i}` }, KEY)).arrayBuffer()
    await (await evaluate(relay, { targetingKey: 'victim' }, KEY)).arrayBuffer()
    upstream.hold()
    const inFlight = evaluate(relay, { targetingKey: 'victim' }, KEY).then((r) => r.arrayBuffer())
    await waitFor(() => upstream.held() !== undefined, 5000)
    for (let i = 0; i < 3; i++) await (await evaluate(relay, { targetingKey: `b${i}` }, KEY)).arrayBuffer()
    await waitFor(async () => (await stored()).filter((body) => body.includes('"pro"')).length === 7, 10_000, 20)
    // Another tenant fills Redis: it refuses writes (OOM).
    const tenant = await fillRedis(redis.url, cleanups)
    upstream.set('revoked')
    await (await fetch(`${relay.url}/holdfast/v1/refresh`, { method: 'POST', headers: { Authorization: 'Bearer adm' } })).arrayBuffer()
    expect((await status()).contexts).toBe(0)
    await waitFor(async () => (await status()).redis?.unshared === 7, 10_000, 20)
    // The victim's request, sent before the 401, is answered now: 200 with the values from before.
    upstream.release()
    await inFlight
    await tenant.free()
    await waitFor(async () => (await status()).redis?.unshared === 0, 20_000, 50)
    // Before: the victim's answer went to the store in its drop's place (6 drops, 1 'pro').
    const bodies = await stored()
    expect([bodies.filter((body) => body.includes('"kind":"dropped"')).length, bodies.filter((body) => body.includes('"pro"')).length]).toEqual([7, 0])
    upstream.set('down')
    expect((await evaluate(relay, { targetingKey: 'victim' }, KEY)).status).toBe(503)
  })
})
