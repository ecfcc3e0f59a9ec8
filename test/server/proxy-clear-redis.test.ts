// --upstream --redis --data-dir with --on-upstream-unauthorized clear: a context whose values an
// upstream 401 dropped, across a restart in an outage. The data dir records the drop (6ff4d53); the
// store still holds the answer shared before it. A real redis-server.
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { status, useRedisFleet } from './redis-fleet'
import { evaluate, tempDir, waitFor } from './helpers'
import { startUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 60_000 })

const { redisServer, relay } = useRedisFleet()

describe('--upstream --redis --data-dir: a context dropped for a 401, restarted in an outage', () => {
  it('is not served the answer the store holds from before the drop (503), until the upstream answers it again', async () => {
    const redis = await redisServer()
    const dataDir = join(await tempDir(), 'data')
    const plan = { ofrep: () => ({ flags: [{ key: 'plan', value: 'pro', reason: 'STATIC' }] }) }
    const upstream = await startUpstream(plan)
    const start = () => relay(redis, upstream, { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: undefined, dataDir, onUpstreamUnauthorized: 'clear' })
    const ask = async (server: { url: string }) => {
      const response = await evaluate(server as never, { targetingKey: 'x' })
      return { status: response.status, body: (await response.json()) as any }
    }
    const first = await start()
    await waitFor(async () => (await status(first.server)).redis?.state === 'up', 20_000)
    expect((await ask(first.server)).body.flags).toEqual([{ key: 'plan', value: 'pro', reason: 'STATIC' }])
    // Shared: the store holds the answer.
    await waitFor(async () => (await redis.command('KEYS', '*context:*')).includes('context:'), 5000, 20)
    upstream.set({ status: 401, json: { errorCode: 'UNAUTHORIZED' } })
    expect((await ask(first.server)).status).toBe(503)
    await first.server.close()

    upstream.set({ status: 503, text: 'down' })
    const restarted = await start()
    await waitFor(async () => (await status(restarted.server)).redis?.state === 'up', 20_000)
    // The failure makes the relay look the context up in the store (a request, then the next one).
    const answers = [await ask(restarted.server)]
    await new Promise((r) => setTimeout(r, 300))
    answers.push(await ask(restarted.server))
    expect(answers.map((a) => a.status), JSON.stringify(answers.map((a) => a.body))).toEqual([503, 503])

    upstream.set(plan)
    await vi.waitFor(async () => expect((await ask(restarted.server)).status).toBe(200), { timeout: 5000, interval: 100 })
  })
})
