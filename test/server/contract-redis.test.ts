// CONTRACT §9 --redis, in proxy mode: "Redis down: every relay keeps serving what it holds and says
// so in its status" (redis-relay.test.ts holds it for --flags-url). A real redis-server, killed.
import { describe, expect, it, vi } from 'vitest'
import { status, useRedisFleet, type Relay } from './redis-fleet'
import { evaluate, waitFor } from './helpers'
import { startUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 60_000 })

const { redisServer, relay } = useRedisFleet()

describe('--upstream --redis: Redis down', () => {
  it('both relays keep serving each context they hold, fresh while the upstream answers, stale once it is down, and their status says Redis is down', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ ofrep: (context) => ({ flags: [{ key: 'greeting', value: `hello ${String(context.targetingKey)}`, reason: 'STATIC' }] }) })
    const proxy = () => relay(redis, upstream, { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: undefined })
    const relays = [await proxy(), await proxy()]
    for (const r of relays) await waitFor(async () => (await status(r.server)).redis?.state === 'up', 20_000)
    const ask = async (r: Relay) => {
      const response = await evaluate(r.server, { targetingKey: 'ann' })
      return { status: response.status, body: (await response.json()) as any }
    }
    for (const r of relays) expect((await ask(r)).body.flags).toEqual([{ key: 'greeting', value: 'hello ann', reason: 'STATIC' }])

    await redis.stop({ kill9: true })
    for (const r of relays) {
      await waitFor(async () => (await status(r.server)).redis?.state === 'down', 10_000)
      const answer = await ask(r)
      expect(answer.status).toBe(200)
      expect(answer.body.flags).toEqual([{ key: 'greeting', value: 'hello ann', reason: 'STATIC' }])
      expect((await fetch(`${r.server.url}/readyz`)).status).toBe(200)
    }
    upstream.set({ status: 503, text: 'down' })
    for (const r of relays) {
      const answer = await ask(r)
      expect(answer.status).toBe(200)
      expect(answer.body.flags).toEqual([{ key: 'greeting', value: 'hello ann', reason: 'STATIC' }])
      expect(answer.body.metadata.holdfast).toMatchObject({ source: 'upstream', stale: true })
      expect(await status(r.server)).toMatchObject({ ready: true, redis: { state: 'down' }, upstream: { state: 'failing' } })
    }
  })
})
