// Proxy mode with --redis and --on-upstream-unauthorized clear, on a real redis-server restarted
// empty: after the reconnect every relay writes back what it holds. A relay of the fleet that missed
// the drop (cut off from Redis when it was written) still holds the answer from before it, and writes
// it back; the relay that dropped must write its drop back too, at the drop's place in the store's
// order, or a relay new to the fleet started in the upstream outage after takes that answer and
// serves the revoked user its values (200). An answer got after the drop still wins over it.
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { createRedisStore, type RelaySource } from '@holdfast/server'
import { startTcpProxy } from '../support/tcpProxy'
import { askSource, clearSource, PRO, proxyClear, storedBodies } from './dropFixtures'
import { status, useRedisFleet } from './redis-fleet'
import { evaluate, tempDir, waitFor } from './helpers'
import { startUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 })

const { cleanups, redisServer, relay } = useRedisFleet()

async function fleet() {
  const redis = await redisServer()
  const upstream = await startUpstream(PRO)
  const proxy = (redisUrl: string): RelaySource => clearSource(upstream, 1000, () => createRedisStore({ url: redisUrl, namespace: 'drop-restart', commandTimeoutMs: 1000, reconnectMaxMs: 100 }), cleanups)
  const ask = (s: RelaySource, targetingKey = 'victim') => askSource(s, targetingKey)
  const stored = () => storedBodies(redis, 'holdfast:drop-restart:doc:context:*')
  const up = (s: RelaySource) => waitFor(() => s.relayStatus().redis?.state === 'up', 10_000)
  // Two requests in the outage, the second after the first's look-up in the store had time to land.
  const twice = async (s: RelaySource) => {
    const first = await ask(s)
    await new Promise((resolve) => setTimeout(resolve, 300))
    return [first, await ask(s)]
  }
  return { redis, upstream, proxy, ask, stored, up, twice }
}

describe('proxy mode, clear: Redis restarted empty', () => {
  it('gets the drop back from the relay that dropped: the answer from before it, written back by a relay that missed the drop, loses to it', async () => {
    const { redis, upstream, proxy, ask, stored, up, twice } = await fleet()
    const link = await startTcpProxy(redis.port)
    cleanups.push(() => link.close())
    // A answers the victim; B (through a link that can be cut) takes that answer from the store.
    const a = proxy(redis.url)
    const b = proxy(link.url)
    for (const s of [a, b]) {
      await s.open()
      await up(s)
    }
    expect(await ask(a)).toEqual({ status: 200, value: 'pro' })
    await waitFor(() => b.relayStatus().contexts === 1, 10_000)

    // B is cut off from Redis; the upstream refuses the victim's credentials: A drops it, and the
    // store holds the drop. B, cut off, misses it and still holds the answer from before.
    link.cut()
    await waitFor(() => b.relayStatus().redis?.state === 'down', 10_000)
    upstream.set({ status: 401, json: { errorCode: 'UNAUTHORIZED' } })
    expect((await ask(a)).status).toBe(503)
    await waitFor(async () => (await stored()).some((body) => body.startsWith('{"kind":"dropped"')), 10_000)

    // Redis restarts empty; B's link heals. Both write back what they know.
    await redis.stop()
    await redis.start()
    link.restore()
    for (const s of [a, b]) await up(s)
    await waitFor(async () => (await stored()).length === 1, 10_000)
    await waitFor(() => a.relayStatus().redis?.unshared === 0 && b.relayStatus().redis?.unshared === 0, 10_000)
    await new Promise((resolve) => setTimeout(resolve, 500))
    // Before: the store held B's answer from before the drop ('pro'), and no drop.
    const bodies = await stored()
    expect(bodies.map((body) => body.slice(0, 20))).toEqual(['{"kind":"dropped","k'])

    // The upstream goes down: a relay new to the fleet (no data dir) answers the victim 503, and so
    // do both relays (B took the drop). Before: the new relay took B's answer and served 200 'pro'.
    upstream.set({ status: 503, text: 'down' })
    const c = proxy(redis.url)
    await c.open()
    await up(c)
    for (const s of [c, a, b]) expect((await twice(s)).map((answer) => answer.status)).toEqual([503, 503])
  })

  it('keeps an answer got after the drop: it wins over the drop written back', async () => {
    const { redis, upstream, proxy, ask, stored, up, twice } = await fleet()
    const link = await startTcpProxy(redis.port)
    cleanups.push(() => link.close())
    // A (through the link) drops the victim; B takes the drop.
    const a = proxy(link.url)
    const b = proxy(redis.url)
    for (const s of [a, b]) {
      await s.open()
      await up(s)
    }
    expect(await ask(a)).toEqual({ status: 200, value: 'pro' })
    await waitFor(() => b.relayStatus().contexts === 1, 10_000)
    upstream.set({ status: 401, json: { errorCode: 'UNAUTHORIZED' } })
    expect((await ask(a)).status).toBe(503)
    await waitFor(() => b.relayStatus().contexts === 0, 10_000)

    // A is cut off; the upstream accepts the victim again and B gets its answer, after the drop.
    link.cut()
    await waitFor(() => a.relayStatus().redis?.state === 'down', 10_000)
    upstream.set(PRO)
    expect(await ask(b)).toEqual({ status: 200, value: 'pro' })
    await waitFor(async () => (await stored()).some((body) => body.includes('"pro"')), 10_000)

    // Redis restarts empty; A's link heals: A writes back its drop, B its later answer.
    await redis.stop()
    await redis.start()
    link.restore()
    for (const s of [a, b]) await up(s)
    await waitFor(async () => (await stored()).length === 1, 10_000)
    await waitFor(() => a.relayStatus().redis?.unshared === 0 && b.relayStatus().redis?.unshared === 0, 10_000)
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect((await stored()).filter((body) => body.includes('"pro"'))).toHaveLength(1)

    // In the outage after, the whole fleet serves that answer, A included (it took it).
    upstream.set({ status: 503, text: 'down' })
    const c = proxy(redis.url)
    await c.open()
    await up(c)
    for (const s of [c, a, b]) expect((await twice(s)).map((answer) => answer.value)).toEqual(['pro', 'pro'])
  })

  it('gets the drop back when the answer from before it comes from a data dir, written back first', async () => {
    const redis = await redisServer()
    const link = await startTcpProxy(redis.port)
    cleanups.push(() => link.close())
    const upstream = await startUpstream(PRO)
    const dataDir = join(await tempDir(), 'data')
    const start = (url: string, more = {}) => relay(redis, upstream, { ...proxyClear(upstream), redis: { url, commandTimeoutMs: 1000 }, ...more })
    const ask = async (server: { url: string }) => {
      const response = await evaluate(server as never, { targetingKey: 'victim' })
      return { status: response.status, body: (await response.json()) as any }
    }
    const stored = () => storedBodies(redis, 'holdfast:*:doc:context:*')
    const up = (server: { url: string }) => waitFor(async () => (await status(server as never)).redis?.state === 'up', 20_000)
    // A (through the link) answers the victim; B, with a data dir, takes that answer, saves it and stops.
    const a = await start(link.url)
    await up(a.server)
    expect((await ask(a.server)).status).toBe(200)
    const b = await start(redis.url, { dataDir })
    await waitFor(async () => (await status(b.server)).contexts === 1, 10_000)
    await b.server.close()
    // A drops the victim (the upstream refuses its credentials); the store holds the drop.
    upstream.set({ status: 401, json: { errorCode: 'UNAUTHORIZED' } })
    expect((await ask(a.server)).status).toBe(503)
    await waitFor(async () => (await stored()).some((body) => body.startsWith('{"kind":"dropped"')), 10_000)
    // …and A has the store's word for it (cut off before that, A writes it again later, anew).
    await waitFor(async () => (await status(a.server)).redis?.unshared === 0, 10_000)
    // Redis restarts empty while A is cut off; the upstream goes down. B restarts from its data dir
    // and writes back the answer from before the drop first; then A's link heals.
    link.cut()
    await waitFor(async () => (await status(a.server)).redis?.state === 'down', 10_000)
    await redis.stop()
    await redis.start()
    upstream.set({ status: 503, text: 'down' })
    const b2 = await start(redis.url, { dataDir })
    await up(b2.server)
    await waitFor(async () => (await stored()).length === 1, 10_000)
    link.restore()
    await up(a.server)
    await new Promise((resolve) => setTimeout(resolve, 1000))
    // Before: B's answer was written at a new place in the store's order, after the drop: A's drop
    // lost to it, A took it back, and the store held 'pro'.
    expect((await stored()).map((body) => body.slice(0, 20))).toEqual(['{"kind":"dropped","k'])
    const c = await start(redis.url)
    await up(c.server)
    for (const server of [c, a, b2]) {
      const first = await ask(server.server)
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect([first.status, (await ask(server.server)).status], JSON.stringify(first.body)).toEqual([503, 503])
    }
  })
})
