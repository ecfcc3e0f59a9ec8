// Proxy mode with --redis and --on-upstream-unauthorized clear-after=SECONDS, on a real
// redis-server: relay A's request for a user is refused (401), its run begins; the key is granted
// again and relay B asks for the same user (200, shared through the store). Nobody asks A again, so
// its timer drops the user SECONDS after the 401: that drop is the upstream's word at the refusal,
// and must not stand over B's answer, asked for after it (the user's credentials are good again).
import { describe, expect, it, vi } from 'vitest'
import type { RelaySource } from '@holdfast/server'
import { askSource, clearAfterRelay, PRO, storedBodies, victimRefusedOnA } from './dropFixtures'
import { useRedisFleet } from './redis-fleet'
import { tempDir, waitFor } from './helpers'
import { startUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 })

const { cleanups, redisServer } = useRedisFleet()

describe('proxy mode, clear-after, --redis: a key granted again before its run is due', () => {
  it('the drop SECONDS after the 401 does not take the answer another relay got after it: the user keeps his values through an outage', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream(PRO)
    const relay = () => clearAfterRelay(cleanups, redis.url, upstream.url, 'regrant')
    const a = relay()
    const b = relay()
    // The key is revoked: A's request is refused (the run begins; held until it is due).
    await victimRefusedOnA(a, b, upstream)
    // Granted again: B asks for the user, answered 200 and shared.
    upstream.set(PRO)
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(await askSource(b, 'victim')).toEqual({ status: 200, value: 'pro' })
    // A's run comes due (1 s after its 401), nobody asking A again.
    await new Promise((resolve) => setTimeout(resolve, 2000))
    // Before: A's drop took a ticket as its timer fired, after B's answer, and was written in the
    // store over it; B took it and dropped the user's good answer (0 contexts), and in the outage
    // after every relay answered the user 503, a relay new to the fleet too.
    const stored = () => storedBodies(redis, 'holdfast:regrant:doc:context:*')
    await waitFor(async () => (await stored()).every((body) => !body.startsWith('{"kind":"dropped"')), 5000).catch(() => undefined)
    expect((await stored()).map((body) => body.slice(0, 8))).toEqual(['{"key":"'])
    expect(b.relayStatus().contexts).toBe(1)
    upstream.set({ status: 503, text: 'down' })
    const c = relay()
    await c.open()
    await waitFor(() => c.relayStatus().redis?.state === 'up', 10_000)
    // Twice each: the second after the first's look-up in the store had time to land.
    for (const s of [b, a, c]) {
      await askSource(s, 'victim')
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(await askSource(s, 'victim')).toEqual({ status: 200, value: 'pro' })
    }
  })

  it('also when the relay whose run it is restarted meanwhile (its data dir carries the run on): the drop due after the restart does not take that answer either', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream(PRO)
    const dir = await tempDir()
    const relay = (withDir: boolean) => clearAfterRelay(cleanups, redis.url, upstream.url, 'regrant-restart', withDir ? { dir } : {})
    const up = (s: RelaySource) => waitFor(() => s.relayStatus().redis?.state === 'up', 10_000)
    const a = relay(true)
    const b = relay(false)
    for (const s of [a, b]) {
      await s.open()
      await up(s)
    }
    expect(await askSource(a, 'victim')).toEqual({ status: 200, value: 'pro' })
    await waitFor(() => b.relayStatus().contexts === 1, 10_000)
    upstream.set({ status: 401, json: { errorCode: 'UNAUTHORIZED' } })
    expect((await askSource(a, 'victim')).status).toBe(200)
    await a.close()
    // Granted again: B's request for the user answered 200; then the upstream goes down, and A
    // restarts in the outage, its run read back from the data dir, due 1 s after its 401.
    upstream.set(PRO)
    expect(await askSource(b, 'victim')).toEqual({ status: 200, value: 'pro' })
    upstream.set({ status: 503, text: 'down' })
    const again = relay(true)
    await again.open()
    await up(again)
    await new Promise((resolve) => setTimeout(resolve, 2000))
    // Before: the drop read back had no place but the one taken as it fired, after B's answer:
    // written over it, and B dropped the user's good answer (0 contexts, 503).
    const stored = () => storedBodies(redis, 'holdfast:regrant-restart:doc:context:*')
    await waitFor(async () => (await stored()).every((body) => !body.startsWith('{"kind":"dropped"')), 5000).catch(() => undefined)
    expect((await stored()).map((body) => body.slice(0, 8))).toEqual(['{"key":"'])
    expect(b.relayStatus().contexts).toBe(1)
    for (const s of [b, again]) {
      await askSource(s, 'victim')
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(await askSource(s, 'victim')).toEqual({ status: 200, value: 'pro' })
    }
  })
})
