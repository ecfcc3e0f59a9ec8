// Live updates across a fleet of relays in proxy mode (--upstream with --redis), on a real
// redis-server: behind a load balancer a tab's stream and its bulk requests may land on different
// relays, so a change one relay finds must reach the streams of the others.
import { describe, expect, it, vi } from 'vitest'
import type { FlagServer } from '@holdfast/server'
import { status, useRedisFleet } from './redis-fleet'
import { evaluate, waitFor } from './helpers'
import { startUpstream } from './relay-fakes'

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
})
