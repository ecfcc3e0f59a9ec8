// Proxy mode with --redis and --on-upstream-unauthorized clear, on a real redis-server: a re-ask
// round meeting a revoked SDK key drops every held context of it at once (reaskRounds.ts), and each
// drop is a marker to write (d06ecda). Thousands at once must not flood the relay's Redis client
// (its queue holds 1,000 commands): every command past that failed, counted as the store's failures,
// with 'The queue is full' as its last error, and the answers and lease of that moment failed too.
import { describe, expect, it, vi } from 'vitest'
import { createRedisStore, createSharedContexts } from '@holdfast/server'
import { dropContexts, sharedUp } from './dropFixtures'
import { useRedisFleet } from './redis-fleet'
import { recordingLogger, waitFor } from './helpers'

vi.setConfig({ testTimeout: 60_000 })

const { cleanups, redisServer } = useRedisFleet()

describe('proxy mode, clear: 3,000 contexts dropped at once', () => {
  it('writes every drop to the store without one failed command or warning', async () => {
    const redis = await redisServer()
    const log = recordingLogger()
    const shared = createSharedContexts({ store: createRedisStore({ url: redis.url, namespace: 'burst', commandTimeoutMs: 5000 }), take: () => true, held: () => [], log })
    cleanups.push(() => shared.stop())
    await sharedUp(shared)
    dropContexts(shared, 3000)
    await waitFor(async () => Number((await redis.command('DBSIZE')).trim().slice(1)) >= 3000, 30_000, 50)
    await waitFor(() => shared.status().unshared === 0, 30_000, 50)
    expect({ failures: shared.status().failures, lastError: shared.status().lastError, state: shared.status().state }).toEqual({ failures: 0, lastError: undefined, state: 'up' })
    expect(log.lines).toEqual([])
  })
})
