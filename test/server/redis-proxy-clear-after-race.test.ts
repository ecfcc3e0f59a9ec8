// Proxy mode with --redis and --on-upstream-unauthorized clear-after=SECONDS, on a real
// redis-server: relay A's request for a user goes out, then relay B's; the upstream hears B's first
// (200), the key is revoked for good, then hears A's (401). Nobody asks again: SECONDS after the
// 401 every relay must drop the user, the one that never asked too.
import { describe, expect, it, vi } from 'vitest'
import { askSource, clearAfterRelay, PRO } from './dropFixtures'
import { useRedisFleet } from './redis-fleet'
import { waitFor } from './helpers'
import { startUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 })

const { cleanups, redisServer } = useRedisFleet()

describe("proxy mode, clear-after, --redis: a refused request that reached the upstream after another relay's request for the user", () => {
  it('the key revoked for good between the two: after SECONDS every relay drops the user (503 in the outage), the one that never asked and a new one too', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream(PRO)
    // A's requests wait 500 ms on their way to the upstream (a slow network path): its ticket is
    // taken as a request goes out, before B's, but the upstream hears it after B's.
    let slow = false
    const slowFetch = (async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
      if (slow) await new Promise((resolve) => setTimeout(resolve, 500))
      return fetch(input, init)
    }) as typeof fetch
    const a = clearAfterRelay(cleanups, redis.url, upstream.url, 'race', { fetch: slowFetch })
    const b = clearAfterRelay(cleanups, redis.url, upstream.url, 'race')
    for (const s of [a, b]) {
      await s.open()
      await waitFor(() => s.relayStatus().redis?.state === 'up', 10_000)
    }
    expect(await askSource(a, 'victim')).toEqual({ status: 200, value: 'pro' })
    await waitFor(() => b.relayStatus().contexts === 1, 10_000)
    slow = true
    const refused = askSource(a, 'victim')
    await new Promise((resolve) => setTimeout(resolve, 100))
    // B asks (its ticket after A's) and the upstream answers it 200; then the key is revoked, for
    // good, and A's request reaches the upstream: 401.
    expect(await askSource(b, 'victim')).toEqual({ status: 200, value: 'pro' })
    upstream.set({ status: 401, json: { errorCode: 'UNAUTHORIZED' } })
    expect((await refused).status).toBe(200)
    // Nobody asks again; the run is due 1 s after A's 401.
    await new Promise((resolve) => setTimeout(resolve, 1500))
    await waitFor(() => a.relayStatus().contexts === 0 && b.relayStatus().contexts === 0, 5000).catch(() => undefined)
    expect({ a: a.relayStatus().contexts, b: b.relayStatus().contexts }).toEqual({ a: 0, b: 0 })
    upstream.set({ status: 503, text: 'down' })
    const c = clearAfterRelay(cleanups, redis.url, upstream.url, 'race')
    await c.open()
    await waitFor(() => c.relayStatus().redis?.state === 'up', 10_000)
    for (const s of [a, b, c]) {
      await askSource(s, 'victim')
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect((await askSource(s, 'victim')).status).toBe(503)
    }
  })
})
