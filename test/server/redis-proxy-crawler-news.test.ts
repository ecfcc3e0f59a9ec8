// Proxy mode with --redis (CONTRACT §10): each relay takes the answers the others got, and a change
// another relay found is announced on this one's streams. What the streams on one relay see of a
// crawler of new users hitting another (new users are no change), and of a flag drawn anew at each
// evaluation for a user with a device on each relay (no loop of notices between the relays).
import { describe, expect, it, vi } from 'vitest'
import { useRedisFleet } from './redis-fleet'
import { evaluate, waitFor } from './helpers'
import { startUpstream } from './relay-fakes'
import { liveClient, pollUntil } from '../support/streamingOfrep'

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 })

const { redisServer, relay } = useRedisFleet()

describe('a crawler of new users on one relay of a --redis fleet', () => {
  it('makes no notice on the streams of the other relays', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'plan', value: 'same', reason: 'STATIC' }] }) })
    const proxy = { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: 3600, liveUpdates: { recoveryWindowMs: 0 } }
    const a = await relay(redis, upstream, proxy)
    const b = await relay(redis, upstream, proxy)
    // A tab's stream on b.
    const tab = new AbortController()
    const opened = await fetch(`${b.server.url}/holdfast/v1/stream`, { signal: tab.signal })
    expect(opened.status).toBe(200)
    try {
      await waitFor(() => b.server.handler.stream!.connections() === 1, 5000)
      // Forty users never seen, one after another over ~2 s, all on a.
      for (let i = 0; i < 40; i++) {
        await (await evaluate(a.server, { targetingKey: `crawler-${i}` })).arrayBuffer()
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      // b has taken them (it can answer them in an outage)...
      await waitFor(async () => ((await (await fetch(`${b.server.url}/holdfast/v1/status`)).json()) as { contexts: number }).contexts === 40, 10_000)
      await new Promise((resolve) => setTimeout(resolve, 500))
      // ...but none was a change. Before: each answer taken for a context b never held was "news",
      // a notice every 250 ms to every tab on b (each refetching) for as long as the crawl lasted.
      expect(b.server.handler.stream!.sent()).toBe(0)
    } finally {
      tab.abort()
    }
  })

  it('a flag drawn anew at each evaluation, one user with a device on each relay: the relays do not notify each other\'s tabs in a loop', async () => {
    const redis = await redisServer()
    let draws = 0
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'nonce', value: `draw-${++draws}`, reason: 'STATIC' }] }) })
    const proxy = { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: 3600, liveUpdates: { recoveryWindowMs: 0 } }
    const a = await relay(redis, upstream, proxy)
    const b = await relay(redis, upstream, proxy)
    const cleanup: Array<() => unknown> = []
    // Two devices of one user (their own headers, not forwarded: one context for the relays).
    const laptop = liveClient(a.server.url, 'fleet-loop-laptop', cleanup, { headers: { 'X-Device': 'laptop' } })
    const phone = liveClient(b.server.url, 'fleet-loop-phone', cleanup, { headers: { 'X-Device': 'phone' } })
    try {
      await laptop.start()
      await phone.start()
      await pollUntil(() => a.server.handler.stream!.connections() === 1 && b.server.handler.stream!.connections() === 1, 5000, 'the streams')
      await laptop.refresh()
      await new Promise((resolve) => setTimeout(resolve, 1500))
      const from = upstream.requests.length
      await new Promise((resolve) => setTimeout(resolve, 3000))
      // Before: each relay took the other's answer (the other device's refetch) as news and
      // notified its own tab, whose refetch the other relay took as news: about a dozen upstream
      // requests in 3 s here, and every tab on both relays refetching, for good.
      expect(upstream.requests.length - from).toBe(0)
    } finally {
      for (const step of cleanup.splice(0).reverse()) await step()
    }
  })
})
