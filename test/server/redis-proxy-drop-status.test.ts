// Proxy mode with --redis and --on-upstream-unauthorized clear, on a real redis-server: what the
// status and the log tell an operator of a drop shared through the store (d06ecda's drop marker).
import { describe, expect, it, vi } from 'vitest'
import { dropWhileRedisFull, PRO, proxyClear } from './dropFixtures'
import { status, useRedisFleet } from './redis-fleet'
import { evaluate, recordingLogger, waitFor } from './helpers'
import { startUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 60_000 })

const { cleanups, redisServer, relay } = useRedisFleet()
const ask = async (server: { url: string }) => (await evaluate(server as never, { targetingKey: 'x' })).status

describe('--upstream --redis, clear: a drop shared through the store', () => {
  it('a relay that drops a context for another relay\'s drop says so in its log, and does not count the drop as an answer taken', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream(PRO)
    const logB = recordingLogger()
    const proxy = proxyClear(upstream)
    const a = await relay(redis, upstream, proxy)
    const b = await relay(redis, upstream, { ...proxy, logger: logB })
    for (const server of [a, b]) await waitFor(async () => (await status(server.server)).redis?.state === 'up', 20_000)
    // A answers the user; B takes that answer from the store.
    expect(await ask(a.server)).toBe(200)
    await waitFor(async () => (await status(b.server)).contexts === 1, 10_000, 20)
    expect((await status(b.server)).redis.taken).toBe(1)

    // The upstream refuses the user's credentials: A drops the context, and B drops it too.
    upstream.set({ status: 401, json: { errorCode: 'UNAUTHORIZED' } })
    expect(await ask(a.server)).toBe(503)
    await waitFor(async () => (await status(b.server)).contexts === 0, 10_000, 20)
    // Its users get 503 where they had values: the log says why, as A's does.
    expect(logB.lines.filter((line) => /dropped/.test(line)), logB.lines.join('\n')).toEqual([expect.stringMatching(/another relay dropped a context's values for an upstream 401\/403 .*dropped here too/)])
    // No answer was taken: the drop is not counted as one (holdfast_redis_documents_taken_total).
    expect((await status(b.server)).redis.taken).toBe(1)
  })

  it('the log says when a drop Redis refused (OOM) reached it, not "shared the 0 answer(s)"', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream(PRO)
    const log = recordingLogger()
    const first = await relay(redis, upstream, { ...proxyClear(upstream), logger: log })
    await dropWhileRedisFull(redis, upstream, first.server, cleanups, log)
    await waitFor(() => log.lines.some((line) => /could not take before/.test(line)), 5000, 20)
    expect(log.lines.filter((line) => /could not take before/.test(line))).toEqual([expect.stringMatching(/the 1 dropped context\(s\)/)])
    expect(log.lines.join('\n')).not.toMatch(/the 0 answer/)
  })
})
