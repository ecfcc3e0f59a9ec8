// Proxy mode with --redis and --on-upstream-unauthorized clear, on a real redis-server slow to
// answer its tickets: the drops made while a drop's ticket is being taken share it (a round drops
// thousands at once, reaskRounds.ts). A context dropped, answered again (its key accepted again),
// then dropped again, all before that ticket came, must not have its second drop placed before
// the answer in the store's order: the store would keep the answer, and the relay would take it back.
import { describe, expect, it, vi } from 'vitest'
import { createRedisStore, type SharedStore } from '@holdfast/server'
import { askSource, clearSource, storedBodies } from './dropFixtures'
import { useRedisFleet } from './redis-fleet'
import { waitFor } from './helpers'
import { startUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 })

const { cleanups, redisServer } = useRedisFleet()

describe('proxy mode, clear: dropped, answered, dropped again while the drop ticket is slow', () => {
  it('keeps the second drop: in the outage after, the dropped user gets 503, and the store holds the drop', async () => {
    const redis = await redisServer()
    const pro = { ofrep: () => ({ flags: [{ key: 'plan', value: 'pro', reason: 'STATIC' }] }) }
    const refused = { status: 401, json: { errorCode: 'UNAUTHORIZED' } }
    let answer: Parameters<typeof startUpstream>[0] = pro
    const upstream = await startUpstream(() => answer as never)
    // Tickets held at a gate (a Redis slow to answer), then taken in the order they were asked for.
    let gate: Promise<void> | undefined
    let open = () => {}
    const slow = (store: SharedStore): SharedStore => ({
      ...store,
      async ticket() {
        if (gate) await gate
        return store.ticket()
      },
    })
    const source = clearSource(upstream, 5000, () => slow(createRedisStore({ url: redis.url, namespace: 'drop-ticket', commandTimeoutMs: 5000 })), cleanups)
    await source.open?.()
    const ask = () => askSource(source, 'x')
    expect(await ask()).toEqual({ status: 200, value: 'pro' })
    const stored = () => storedBodies(redis, 'holdfast:drop-ticket:doc:context:*')
    await waitFor(async () => (await stored()).some((body) => body?.includes('pro')), 10_000)
    gate = new Promise((resolve) => (open = resolve))
    answer = refused
    expect((await ask()).status).not.toBe(200)
    answer = pro
    expect(await ask()).toEqual({ status: 200, value: 'pro' })
    answer = refused
    expect((await ask()).status).not.toBe(200)
    gate = undefined
    open()
    // Every write settled (the same body read three times running, 100 ms apart).
    let last = ''
    let same = 0
    await waitFor(async () => {
      const now = JSON.stringify(await stored())
      same = now === last ? same + 1 : 0
      last = now
      return same >= 3
    }, 10_000, 100)
    answer = { status: 500, text: 'down' }
    // Before: 200 'pro' (the second drop, at the first one's ticket, lost to the answer between).
    expect(await ask()).toEqual({ status: 503, value: undefined })
    expect((await stored())[0]).toContain('"kind":"dropped"')
  })
})
