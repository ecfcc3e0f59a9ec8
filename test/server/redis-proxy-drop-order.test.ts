// Proxy mode with --redis and --on-upstream-unauthorized clear, on a real redis-server: an answer
// asked for before another relay's drop (d06ecda's marker) and got after it, with the values held
// before. By the store's order it is older than the drop: no relay keeps it, the one that got it
// included, and the store keeps the drop.
import { describe, expect, it, vi } from 'vitest'
import { createRedisStore, type RelaySource, type SharedStore } from '@holdfast/server'
import { askSource, clearSource, storedBodies } from './dropFixtures'
import { useRedisFleet } from './redis-fleet'
import { waitFor } from './helpers'
import { startUpstream } from './relay-fakes'

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 })

const { cleanups, redisServer } = useRedisFleet()

describe('proxy mode, clear: an answer asked for before another relay\'s drop, got after it', () => {
  it.each([
    ['shared at once', false],
    ['its write refused, shared again later', true],
  ])('is not kept (%s): in the outage after, every relay answers the dropped user 503', async (_, refused) => {
    let refuse = false
    const redis = await redisServer()
    const pro = { ofrep: () => ({ flags: [{ key: 'plan', value: 'pro', reason: 'STATIC' }] }) }
    let next: Array<Parameters<typeof startUpstream>[0]> = []
    const upstream = await startUpstream(() => (next.shift() ?? pro) as never)
    const proxy = (wrap = (store: SharedStore) => store): RelaySource => clearSource(upstream, 5000, () => wrap(createRedisStore({ url: redis.url, namespace: 'drop-order', commandTimeoutMs: 1000 })), cleanups)
    const ask = (s: RelaySource) => askSource(s, 'x')
    const stored = () => storedBodies(redis, 'holdfast:drop-order:doc:context:*')

    const a = proxy()
    // B's store refuses its writes while `refuse` is set (as Redis at its maxmemory does).
    const b = proxy((store) => ({
      ...store,
      put: (key, doc, lease) => (refuse ? Promise.resolve({ ok: false as const, error: 'OOM command not allowed when used memory > maxmemory' }) : store.put(key, doc, lease)),
    }))
    for (const s of [a, b]) await s.open()
    await waitFor(() => a.relayStatus().redis?.state === 'up' && b.relayStatus().redis?.state === 'up', 10_000)
    expect(await ask(a)).toEqual({ status: 200, value: 'pro' })
    await waitFor(async () => (await stored()).length === 1 && b.relayStatus().contexts === 1, 10_000)

    // B asks for the user (its place in the store's order taken now); the upstream answers it late.
    // Meanwhile it refuses the user's credentials to A: A drops, and B takes the drop.
    next = [{ delayMs: 3000, then: pro } as never, { status: 401, json: { errorCode: 'UNAUTHORIZED' } }]
    const asked = ask(b)
    await waitFor(() => upstream.requests.length >= 3, 10_000)
    refuse = refused
    expect(await ask(a)).toEqual({ status: 503, value: undefined })
    await waitFor(async () => (await stored())[0]?.startsWith('{"kind":"dropped"') === true && b.relayStatus().contexts === 0, 10_000)
    // B's answer comes (the same values it held before the drop): asked for before the drop, it is
    // older than it, and B does not keep it.
    expect(await asked).toEqual({ status: 200, value: 'pro' })
    if (refused) {
      // Its write refused, it is written again once the store takes writes (after 1 s): late,
      // with no place in the store's order but its ticket's, older than the drop.
      await waitFor(() => b.relayStatus().redis?.unshared === 1, 10_000)
      refuse = false
    }
    await waitFor(() => b.relayStatus().redis?.unshared === 0, 10_000)
    await new Promise((resolve) => setTimeout(resolve, 500))
    // The store still holds the drop: that answer is older than it.
    expect(await stored()).toEqual([expect.stringMatching(/^\{"kind":"dropped"/)])

    // The upstream goes down: a relay new to the fleet answers the dropped user 503, and so does A.
    upstream.set({ status: 503, text: 'down' })
    const c = proxy()
    await c.open()
    await waitFor(() => c.relayStatus().redis?.state === 'up', 10_000)
    const answers = [await ask(c)]
    await new Promise((resolve) => setTimeout(resolve, 300))
    answers.push(await ask(c), await ask(a), await ask(b))
    expect(answers.map((answer) => answer.status)).toEqual([503, 503, 503, 503])
  })
})
