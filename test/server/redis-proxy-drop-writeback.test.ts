// Proxy mode with --redis and --on-upstream-unauthorized clear, on a real redis-server: a relay
// writing its held answers back after Redis came back (a reconnect: what a Redis restarted empty
// lost) while the upstream's 401 drops one of them. The drop marker (d06ecda) must stay in the
// store: the answer from before the drop, listed for the write-back before the drop, must not be
// written over it, or every relay started in the outage after serves the revoked user its values.
import { describe, expect, it, vi } from 'vitest'
import { createRedisStore, type RelaySource, type SharedStore } from '@holdfast/server'
import { startTcpProxy } from '../support/tcpProxy'
import { askSource, clearSource, PRO, storedBodies } from './dropFixtures'
import { useRedisFleet } from './redis-fleet'
import { waitFor } from './helpers'
import { startUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 })

const { cleanups, redisServer } = useRedisFleet()

describe('proxy mode, clear: a drop during the write-back after a reconnect', () => {
  it('leaves the drop in the store; a relay started in the outage after answers the dropped user 503', async () => {
    const redis = await redisServer()
    const link = await startTcpProxy(redis.port)
    cleanups.push(() => link.close())
    const revoked = 'user-9'
    let refuse = false
    const upstream = await startUpstream((request) => (refuse && request.body.includes(revoked) ? { status: 401, json: { errorCode: 'UNAUTHORIZED' } } : PRO))
    // The store's writes can be held at a gate (a slow Redis), to have the write-back under way.
    let gate: Promise<void> | undefined
    let open = () => {}
    let held = 0
    const gated = (store: SharedStore): SharedStore => ({
      ...store,
      async put(key, doc, lease) {
        if (gate) {
          held++
          await gate
        }
        return store.put(key, doc, lease)
      },
    })
    const proxy = (redisUrl: string, wrap = (store: SharedStore) => store): RelaySource =>
      clearSource(upstream, 1000, () => wrap(createRedisStore({ url: redisUrl, namespace: 'drop-writeback', commandTimeoutMs: 1000, reconnectMaxMs: 100 })), cleanups)
    const ask = (s: RelaySource, targetingKey: string) => askSource(s, targetingKey)
    const stored = () => storedBodies(redis, 'holdfast:drop-writeback:doc:context:*')

    // Ten users answered and shared; the revoked one last (the last of the write-back's order).
    const a = proxy(link.url, gated)
    await a.open()
    await waitFor(() => a.relayStatus().redis?.state === 'up', 10_000)
    for (let i = 0; i < 10; i++) expect(await ask(a, `user-${i}`)).toEqual({ status: 200, value: 'pro' })
    await waitFor(async () => (await stored()).length === 10, 10_000)

    // Redis goes away and comes back: the relay reads the store and writes back what it holds,
    // eight at a time; the writes are slow (held at the gate).
    gate = new Promise((resolve) => (open = resolve))
    link.cut()
    await waitFor(() => a.relayStatus().redis?.state === 'down', 10_000)
    link.restore()
    await waitFor(() => held >= 8, 10_000)
    // Meanwhile the upstream refuses the revoked user's credentials: dropped here, 503.
    refuse = true
    expect((await ask(a, revoked)).status).toBe(503)
    open()
    gate = undefined
    await waitFor(() => a.relayStatus().redis?.unshared === 0 && a.relayStatus().redis?.state === 'up', 10_000)
    await new Promise((resolve) => setTimeout(resolve, 500))
    // The store holds the drop for that user, not the answer from before it.
    const bodies = await stored()
    expect(bodies.filter((body) => body.startsWith('{"kind":"dropped"')), JSON.stringify(bodies.map((body) => body.slice(0, 60)))).toHaveLength(1)
    expect(bodies.filter((body) => body.includes('"pro"'))).toHaveLength(9)

    // The upstream goes down; a relay new to the fleet (no data dir) answers the revoked user 503.
    upstream.set({ status: 503, text: 'down' })
    const b = proxy(redis.url)
    await b.open()
    await waitFor(() => b.relayStatus().redis?.state === 'up', 10_000)
    await waitFor(() => b.relayStatus().contexts === 9, 10_000)
    expect(await ask(b, 'user-0')).toMatchObject({ status: 200, value: 'pro' })
    const answers = [await ask(b, revoked)]
    await new Promise((resolve) => setTimeout(resolve, 300))
    answers.push(await ask(b, revoked))
    expect(answers.map((answer) => answer.status)).toEqual([503, 503])
  })
})
