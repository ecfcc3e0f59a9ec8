// Proxy mode with --redis and --on-upstream-unauthorized clear, on a real redis-server: the drops
// waiting for their turn to be written (eight at a time, 5710b37) when the relay stops, and when
// more wait than the queue's bound. A drop not in the store lets a relay started without a data
// dir in the outage after take the answer from before it and serve the revoked user: an operator
// must be told of every drop that did not reach the store.
import { describe, expect, it, vi } from 'vitest'
import { createRedisStore, createSharedContexts, type SharedStore } from '@holdfast/server'
import { dropContexts, sharedUp } from './dropFixtures'
import { useRedisFleet } from './redis-fleet'
import { recordingLogger, waitFor } from './helpers'

vi.setConfig({ testTimeout: 60_000 })

const { cleanups, redisServer } = useRedisFleet()

// A Redis whose writes each take `delayMs` (a slow one), or wait until `open` (one that stalls).
function slowed(store: SharedStore, delayMs: number, gate?: Promise<void>): SharedStore {
  return {
    ...store,
    async put(key, doc, lease) {
      await (gate ?? new Promise((resolve) => setTimeout(resolve, delayMs)))
      return store.put(key, doc, lease)
    },
  }
}

async function markers(redis: Awaited<ReturnType<ReturnType<typeof useRedisFleet>['redisServer']>>, namespace: string) {
  return (await redis.command('KEYS', `holdfast:${namespace}:doc:context:*`)).split('\r\n').filter((line) => line.startsWith('holdfast:')).length
}

describe('proxy mode, clear: drops waiting for their write', () => {
  it('are counted in unshared while their writes are out to a stalled store, until it takes them', async () => {
    const redis = await redisServer()
    let open = () => {}
    const stall = new Promise<void>((resolve) => (open = resolve))
    const shared = createSharedContexts({ store: slowed(createRedisStore({ url: redis.url, namespace: 'drop-inflight-count', commandTimeoutMs: 5000 }), 0, stall), take: () => true, held: () => [], log: recordingLogger() })
    await sharedUp(shared)
    dropContexts(shared, 5)
    // Five writes out, none taken yet. Before: 0 (only those waiting for a turn were counted), an
    // operator told every drop was recorded while none was.
    expect(shared.status().unshared).toBe(5)
    expect(await markers(redis, 'drop-inflight-count')).toBe(0)
    open()
    await waitFor(() => shared.status().unshared === 0, 10_000)
    expect(await markers(redis, 'drop-inflight-count')).toBe(5)
    await shared.stop()
  })

  it('written back into a Redis restarted empty are counted in unshared until it takes them', async () => {
    const redis = await redisServer()
    let gate: Promise<void> | undefined
    let open = () => {}
    const base = createRedisStore({ url: redis.url, namespace: 'drop-back-count', commandTimeoutMs: 5000, reconnectMaxMs: 100 })
    const store: SharedStore = {
      ...base,
      async put(key, doc, lease) {
        if (gate) await gate
        return base.put(key, doc, lease)
      },
    }
    const shared = createSharedContexts({ store, take: () => true, held: () => [], log: recordingLogger() })
    await sharedUp(shared)
    dropContexts(shared, 20)
    await waitFor(() => shared.status().unshared === 0, 10_000)
    expect(await markers(redis, 'drop-back-count')).toBe(20)
    // Redis restarts empty and stalls the writes: the relay writes its 20 drops back, none taken.
    gate = new Promise<void>((resolve) => (open = resolve))
    await redis.stop()
    await redis.start()
    await waitFor(() => shared.status().state === 'up', 10_000)
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(await markers(redis, 'drop-back-count')).toBe(0)
    // Before: 0, an operator told every drop was in the store while none was.
    expect(shared.status().unshared).toBe(20)
    gate = undefined
    open()
    await waitFor(() => shared.status().unshared === 0, 10_000)
    expect(await markers(redis, 'drop-back-count')).toBe(20)
    await shared.stop()
  })

  it('are written before the store closes when the relay stops', async () => {
    const redis = await redisServer()
    const log = recordingLogger()
    const shared = createSharedContexts({ store: slowed(createRedisStore({ url: redis.url, namespace: 'drop-stop', commandTimeoutMs: 5000 }), 50), take: () => true, held: () => [], log })
    await sharedUp(shared)
    dropContexts(shared, 40)
    // 8 being written, 32 waiting for their turn: none in the store yet (before: 32).
    expect(shared.status().unshared).toBe(40)
    await shared.stop()
    // Before: the 32 still queued were forgotten at the stop and the 8 being written cut off by the
    // store's close, nothing said: none in the store.
    expect(await markers(redis, 'drop-stop')).toBe(40)
    expect(log.lines).toEqual([])
  })

  it('says at the stop how many could not be written (the store stalled), and at the bound how many were let go', async () => {
    const redis = await redisServer()
    const log = recordingLogger()
    const stall = new Promise<void>(() => {})
    const shared = createSharedContexts({ store: slowed(createRedisStore({ url: redis.url, namespace: 'drop-stall', commandTimeoutMs: 5000 }), 0, stall), take: () => true, held: () => [], log, maxContexts: 10 })
    await sharedUp(shared)
    dropContexts(shared, 25)
    // 8 being written, 10 waiting (the bound): 7 let go. Before: let go without a word (and 10).
    expect(shared.status().unshared).toBe(18)
    await waitFor(() => log.lines.some((line) => line.includes('7 dropped context(s) not recorded in the store: more than 10 were waiting')), 5000)
    const stopped = performance.now()
    await shared.stop()
    // Bounded: a stalled store does not hold the close.
    expect(performance.now() - stopped).toBeLessThan(5000)
    expect(log.lines.filter((line) => line.includes('stopping with 18 dropped context(s) not recorded in the store'))).toHaveLength(1)
    expect(await markers(redis, 'drop-stall')).toBe(0)
  })
})
