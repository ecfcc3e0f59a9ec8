// Live updates across a fleet of relays in proxy mode (--upstream with --redis), on a real
// redis-server: behind a load balancer a tab's stream and its bulk requests may land on different
// relays, so a change one relay finds must reach the streams of the others.
import { describe, expect, it, vi } from 'vitest'
import type { FlagServer } from '@holdfast/server'
import { status, useRedisFleet } from './redis-fleet'
import { evaluate, waitFor } from './helpers'
import { startUpstream } from './relay-fakes'
import { startTcpProxy } from '../support/tcpProxy'

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 })

const { redisServer, relay } = useRedisFleet()

/** Opens the event stream of `server` and counts the change notices that come on it. */
async function notices(server: FlagServer) {
  const controller = new AbortController()
  const response = await fetch(`${server.url}/holdfast/v1/stream`, { signal: controller.signal })
  expect(response.status).toBe(200)
  let text = ''
  void (async () => {
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) text += Buffer.from(chunk).toString()
    } catch {
      // aborted
    }
  })()
  return { count: () => text.split('"type":"refetchEvaluation"').length - 1, close: () => controller.abort() }
}

describe('proxy mode with --redis: a change one relay finds', () => {
  it('is announced on the streams of another relay that takes it from the store', async () => {
    const redis = await redisServer()
    let plan = 'old'
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'banner', value: plan, reason: 'STATIC' }] }) })
    // a re-asks its held contexts every 0.2 s while a stream is open; b would not for a minute.
    const a = await relay(redis, upstream, { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: 0.2 })
    const b = await relay(redis, upstream, { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: 60 })
    for (const r of [a, b]) await waitFor(async () => (await status(r.server)).redis?.state === 'up', 20_000)
    const banner = async (server: FlagServer) => ((await (await evaluate(server, { targetingKey: 'u' })).json()) as { flags: Array<{ value: unknown }> }).flags[0].value
    // The tab's bulk request went to a, its stream to b (another tab keeps a stream open on a).
    // Nineteen other users asked a too.
    expect(await banner(a.server)).toBe('old')
    for (let i = 0; i < 19; i++) await evaluate(a.server, { targetingKey: `other-${i}` })
    const onA = await notices(a.server)
    const onB = await notices(b.server)
    try {
      plan = 'new'
      // a finds the change on its next round, announces it, and shares the answer through Redis.
      await waitFor(() => onA.count() >= 1, 10_000)
      await waitFor(async () => (await status(b.server)).redis.taken >= 20, 10_000)
      expect(await banner(b.server)).toBe('new')
      // Before: b served the new answer but said nothing: the tab, on b's stream, kept the old
      // value until it was focused again (with the stream open it does not poll).
      await waitFor(() => onB.count() >= 1, 3000).catch(() => undefined)
      expect(onB.count()).toBeGreaterThanOrEqual(1)
      // The twenty answers taken make one notice (a loaded machine may split them), not twenty.
      await new Promise((r) => setTimeout(r, 500))
      expect(onB.count()).toBeLessThanOrEqual(3)
    } finally {
      onA.close()
      onB.close()
    }
  })

  it('is found even when the relay that holds the context has no stream open: a stream open on any relay of the fleet keeps every relay re-asking', async () => {
    const redis = await redisServer()
    let plan = 'old'
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'kill-switch', value: plan, reason: 'STATIC' }] }) })
    const a = await relay(redis, upstream, { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: 0.2 })
    const b = await relay(redis, upstream, { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: 0.2 })
    for (const r of [a, b]) await waitFor(async () => (await status(r.server)).redis?.state === 'up', 20_000)
    const value = async (server: FlagServer) => ((await (await evaluate(server, { targetingKey: 'u' })).json()) as { flags: Array<{ value: unknown }> }).flags[0].value
    // Behind a load balancer the tab's bulk requests went to a, its only stream to b. Only a knows
    // the context (b holds its answer, taken from the store: a hash, never the raw context or its
    // credentials), and a has no stream open.
    expect(await value(a.server)).toBe('old')
    await waitFor(async () => (await status(b.server)).redis.taken >= 1, 10_000)
    const onB = await notices(b.server)
    try {
      const flipped = Date.now()
      plan = 'new'
      // Before: a re-asked only while streams were open on a itself, and b could not ask for a
      // context it never saw: the flipped kill switch was never found, and the tab, which does not
      // poll while its stream is open, kept the old value for good. Bound: the streams-open signal
      // (b's next interval), a's next round (its interval), the store, b's 250 ms gathering.
      await waitFor(() => onB.count() >= 1, 10_000).catch(() => undefined)
      expect(onB.count()).toBeGreaterThanOrEqual(1)
      expect(Date.now() - flipped).toBeLessThan(5000)
      expect(await value(b.server)).toBe('new')
    } finally {
      onB.close()
    }
    // No stream open anywhere in the fleet: no relay re-asks (the upstream is not asked for
    // every held context every interval for nobody), once the streams-open signal has run out
    // (three intervals and a second: 1.6 s here).
    await new Promise((r) => setTimeout(r, 2500))
    const asked = upstream.requests.length
    await new Promise((r) => setTimeout(r, 1500))
    expect(upstream.requests.length).toBe(asked)
  })

  it('the change that ends an upstream outage, taken from the store, is spread over the recovery window on the streams of the relay that takes it', async () => {
    const redis = await redisServer()
    let down = false
    let plan = 'old'
    const upstream = await startUpstream(() => (down ? { status: 503, text: 'maintenance' } : { ofrep: () => ({ flags: [{ key: 'kill-switch', value: plan, reason: 'STATIC' }] }) }))
    const windowMs = 3000
    // a knows the user and asks every second; b holds only streams (20 tabs) and finds out whether
    // the upstream answers every 0.2 s. An injected even jitter puts b's notices at 0, 150, … 2850 ms.
    const a = await relay(redis, upstream, { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: 1 })
    const b = await relay(redis, upstream, { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: 0.2, liveUpdates: { recoveryWindowMs: windowMs, random: evenly(20) } })
    for (const r of [a, b]) await waitFor(async () => (await status(r.server)).redis?.state === 'up', 20_000)
    expect((await evaluate(a.server, { targetingKey: 'u' })).status).toBe(200)
    await waitFor(async () => (await status(b.server)).redis.taken >= 1, 10_000)
    const onB = await Promise.all(Array.from({ length: 20 }, () => timedNotices(b.server)))
    try {
      down = true
      for (const r of [a, b]) await waitFor(async () => (await status(r.server)).upstream.state === 'failing', 10_000)
      plan = 'new'
      down = false
      // b's own probe finds the upstream back first; a's round then finds the change and b takes it.
      await waitFor(async () => (await status(b.server)).redis.taken >= 2, 10_000)
      // Before: b's spell had ended at its own probe a moment before, so the answer it took went
      // out to all 20 streams at once, and 20 tabs refetched (through the relays, to the upstream)
      // in the same instant after the outage.
      await new Promise((r) => setTimeout(r, 400))
      expect(onB.filter((s) => s.arrivals.length > 0).length).toBeLessThanOrEqual(5)
      await waitFor(() => onB.every((s) => s.arrivals.length >= 1), windowMs + 5000)
      const times = onB.map((s) => s.arrivals[0]).sort((x, y) => x - y)
      expect(times[times.length - 1] - times[0]).toBeGreaterThan(2000)
    } finally {
      for (const s of onB) s.close()
    }
  })

  it('reaches a relay whose subscription went deaf (a half-open connection): it notices, subscribes again and catches up', async () => {
    const redis = await redisServer()
    let plan = 'old'
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'kill-switch', value: plan, reason: 'STATIC' }] }) })
    const proxy = await startTcpProxy(redis.port)
    try {
      const a = await relay(redis, upstream, { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: 0.2 })
      const b = await relay(redis, upstream, { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: 0.2, redis: { url: proxy.url, leaseTtlMs: 1500, commandTimeoutMs: 300 } })
      for (const r of [a, b]) await waitFor(async () => (await status(r.server)).redis?.state === 'up', 20_000)
      expect((await evaluate(a.server, { targetingKey: 'u' })).status).toBe(200)
      await waitFor(async () => (await status(b.server)).redis.taken >= 1, 10_000)
      const onA = await notices(a.server)
      const onB = await notices(b.server)
      try {
        // b's subscription stops delivering, its socket open: nothing fails, nothing arrives.
        proxy.silenceSubscribers()
        const flipped = Date.now()
        plan = 'new'
        await waitFor(() => onA.count() >= 1, 10_000)
        // Before: b missed a's answer for good (proxy mode has no periodic check of thousands of
        // keys) while its status said redis up: the tab on b kept the old kill switch. Bound: the
        // store's heartbeat (2 s) and one command timeout to find the subscription deaf, a
        // reconnect, the re-read, the 250 ms gathering.
        await waitFor(() => onB.count() >= 1, 10_000).catch(() => undefined)
        expect(onB.count()).toBeGreaterThanOrEqual(1)
        expect(Date.now() - flipped).toBeLessThan(6000)
        expect((await status(b.server)).redis.state).toBe('up')
      } finally {
        onA.close()
        onB.close()
      }
    } finally {
      await proxy.close()
    }
  })

  it('the streams-open signal holds while the relay with the streams is in a long re-ask round of its own', async () => {
    const redis = await redisServer()
    let plan = 'old'
    let slow = false
    const upstream = await startUpstream((request) => {
      const answer = { ofrep: () => ({ flags: [{ key: 'kill-switch', value: plan, reason: 'STATIC' }] }) }
      return slow && request.body.includes('"v"') ? { delayMs: 8000, then: answer } : answer
    })
    const a = await relay(redis, upstream, { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: 0.2 })
    const b = await relay(redis, upstream, { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: 0.2, upstreamTimeoutMs: 15_000 })
    for (const r of [a, b]) await waitFor(async () => (await status(r.server)).redis?.state === 'up', 20_000)
    // u asked a; v asked b. The tab of u has its stream on b.
    expect((await evaluate(a.server, { targetingKey: 'u' })).status).toBe(200)
    expect((await evaluate(b.server, { targetingKey: 'v' })).status).toBe(200)
    await waitFor(async () => (await status(b.server)).redis.taken >= 1, 10_000)
    const onB = await notices(b.server)
    try {
      // b's next round waits 8 s for v's answer: longer than the signal lasts (1.6 s here).
      slow = true
      await new Promise((r) => setTimeout(r, 2500))
      const flipped = Date.now()
      plan = 'new'
      await waitFor(() => onB.count() >= 1, 10_000).catch(() => undefined)
      expect(onB.count()).toBeGreaterThanOrEqual(1)
      // Without the signal said during the round, a stops asking u until b's round ends (8 s).
      expect(Date.now() - flipped).toBeLessThan(4000)
    } finally {
      onB.close()
    }
  })

  it('Redis killed and back empty under open streams: the answers written back are no change, and no stream gets a notice', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream({ ofrep: (context) => ({ flags: [{ key: 'greeting', value: `hello ${String(context.targetingKey)}`, reason: 'STATIC' }] }) })
    const a = await relay(redis, upstream, { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: 0.2 })
    const b = await relay(redis, upstream, { flagsUrl: undefined, upstream: upstream.url, pollIntervalSeconds: 0.2 })
    for (const r of [a, b]) await waitFor(async () => (await status(r.server)).redis?.state === 'up', 20_000)
    for (let i = 0; i < 10; i++) await evaluate(i % 2 ? a.server : b.server, { targetingKey: `user-${i}` })
    await waitFor(async () => (await status(a.server)).redis.taken >= 5 && (await status(b.server)).redis.taken >= 5, 10_000)
    const streams = [await notices(a.server), await notices(b.server)]
    try {
      await redis.stop({ kill9: true })
      for (const r of [a, b]) await waitFor(async () => (await status(r.server)).redis.state === 'down', 10_000)
      await redis.start() // empty
      for (const r of [a, b]) await waitFor(async () => (await status(r.server)).redis.state === 'up', 20_000)
      // Each relay writes back what it holds; the other takes the copies: the same values.
      await waitFor(async () => (await redis.command('KEYS', 'holdfast:*:doc:context:*')).split('\r\n').filter((l) => l.includes(':doc:context:')).length >= 10, 10_000)
      await new Promise((r) => setTimeout(r, 1000))
      expect(streams.map((s) => s.count())).toEqual([0, 0])
    } finally {
      for (const s of streams) s.close()
    }
  })
})


/** Opens the event stream of `server` and records when each change notice arrives. */
async function timedNotices(server: FlagServer) {
  const controller = new AbortController()
  const response = await fetch(`${server.url}/holdfast/v1/stream`, { signal: controller.signal })
  expect(response.status).toBe(200)
  const arrivals: number[] = []
  let text = ''
  void (async () => {
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        text += Buffer.from(chunk).toString()
        while (arrivals.length < text.split('"type":"refetchEvaluation"').length - 1) arrivals.push(Date.now())
      }
    } catch {
      // aborted
    }
  })()
  return { arrivals, close: () => controller.abort() }
}

/** An injected jitter source: 0, 1/n, 2/n, … */
function evenly(n: number): () => number {
  let i = 0
  return () => (i++ % n) / n
}
