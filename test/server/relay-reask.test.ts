// Proxy mode's re-ask (CONTRACT §10): while event streams are open, the relay asks the upstream
// again for every context it holds each poll interval, to turn upstream changes into notices. What
// that costs the upstream, against a real relay and a fake upstream on 127.0.0.1, when the relay
// holds many contexts (many users came by once) and the upstream is healthy, failing or hanging.
import { describe, expect, it } from 'vitest'
import type { FlagServer } from '@holdfast/server'
import { evaluate, startServer, waitFor } from './helpers'
import { startUpstream, type FakeUpstream } from './relay-fakes'

const CONTEXTS = 200

async function relayHolding(options: { upstreamTimeoutMs?: number; pollIntervalSeconds?: number } = {}) {
  const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'banner', value: true, reason: 'STATIC' }] }) })
  const relay = await startServer({ flags: undefined, upstream: upstream.url, pollIntervalSeconds: 0.2, ...options })
  for (let i = 0; i < CONTEXTS; i += 20) {
    await Promise.all(Array.from({ length: 20 }, (_, j) => evaluate(relay, { targetingKey: `visitor-${i + j}` }).then((r) => r.arrayBuffer())))
  }
  // One stream open: the relay re-asks what it holds every 200 ms.
  const controller = new AbortController()
  const stream = await fetch(`${relay.url}/holdfast/v1/stream`, { signal: controller.signal })
  void stream.body?.pipeTo(new WritableStream()).catch(() => {})
  return { upstream, relay, stop: () => controller.abort() }
}

/**
 * The upstream requests in at least `ms`, how long the window really was, and how many rounds (one
 * each `intervalMs`) can begin in it: on a loaded machine a 2 s timer fires late, and the rounds
 * of the longer window were counted against the bound of 2 s (14 and 28 requests for 12).
 */
function requestsIn(upstream: FakeUpstream, ms: number, intervalMs: number): Promise<{ asked: number; rounds: number; window: string }> {
  const before = upstream.requests.length
  const started = performance.now()
  return new Promise((resolve) =>
    setTimeout(() => {
      const elapsed = performance.now() - started
      resolve({ asked: upstream.requests.length - before, rounds: Math.floor(elapsed / intervalMs) + 1, window: `in ${Math.round(elapsed)} ms` })
    }, ms),
  )
}

async function failing(relay: FlagServer) {
  await waitFor(async () => ((await (await fetch(`${relay.url}/holdfast/v1/status`)).json()) as { upstream: { state: string } }).upstream.state === 'failing', 5000)
}

describe('the re-ask of held contexts while streams are open', () => {
  it('a healthy upstream: every held context is asked again, at most 4 at a time (held)', async () => {
    const { upstream, stop } = await relayHolding()
    let inFlight = 0
    let most = 0
    upstream.set(() => {
      inFlight++
      most = Math.max(most, inFlight)
      setTimeout(() => inFlight--, 20)
      return { delayMs: 20, then: { ofrep: () => ({ flags: [{ key: 'banner', value: true, reason: 'STATIC' }] }) } }
    })
    // Every held context asked again: awaited, not counted in a 2.5 s window (a loaded machine's
    // relay asked 179 and 199 of the 200 in it).
    const from = upstream.requests.length
    const keyOf = (body: string) => (JSON.parse(body || '{}') as { context?: { targetingKey?: string } }).context?.targetingKey
    await waitFor(() => new Set(upstream.requests.slice(from).map((r) => keyOf(r.body))).size >= CONTEXTS, 20_000)
    expect(most).toBeLessThanOrEqual(4)
    stop()
  }, 45_000)

  it('an upstream answering 503 is not asked for every held context each interval', async () => {
    const { upstream, relay, stop } = await relayHolding()
    upstream.set({ status: 503, text: 'down' })
    await failing(relay)
    // Five intervals. Before: each round asked all 200 contexts in turn, every one failing:
    // about a thousand requests to an upstream that had said it was down.
    const { asked, rounds, window } = await requestsIn(upstream, 1000, 200)
    // (6 × 4 in 1 s.)
    expect(asked, window).toBeLessThanOrEqual(rounds * 4)
    // Still asked every interval, so it is seen coming back.
    expect(asked).toBeGreaterThanOrEqual(2)
    stop()
  }, 20_000)

  it('an upstream that hangs: a round ends with its first timeouts, not after every held context timed out', async () => {
    const { upstream, relay, stop } = await relayHolding({ upstreamTimeoutMs: 200, pollIntervalSeconds: 1 })
    upstream.set('hang')
    await failing(relay)
    // Before: 200 contexts, 4 at a time, 200 ms each: one round kept 4 requests hanging at the
    // upstream without a pause for 10 s (with the defaults, 10,000 contexts and 5 s: 3.5 hours),
    // about 40 in these 2 s. Now: the first 4 time out, and the next interval asks again.
    const { asked, rounds, window } = await requestsIn(upstream, 2000, 1000)
    // (3 × 4 in 2 s.)
    expect(asked, window).toBeLessThanOrEqual(rounds * 4)
    stop()
  }, 20_000)

  it('the status and the metrics show the latest round: contexts held to ask, asked, how long', async () => {
    const { upstream, relay, stop } = await relayHolding()
    type Round = { at: number; contexts: number; asked: number; durationMs: number; outcome: string }
    const round = async () => ((await (await fetch(`${relay.url}/holdfast/v1/status`)).json()) as { reask?: Round }).reask
    await waitFor(async () => (await round())?.asked === CONTEXTS, 5000)
    expect(await round()).toMatchObject({ contexts: CONTEXTS, asked: CONTEXTS, outcome: 'unchanged' })
    const metrics = await (await fetch(`${relay.url}/metrics`)).text()
    expect(metrics).toContain(`holdfast_relay_reask_contexts{of="held"} ${CONTEXTS}`)
    expect(metrics).toContain(`holdfast_relay_reask_contexts{of="asked"} ${CONTEXTS}`)
    expect(metrics).toMatch(/holdfast_relay_reask_duration_seconds \d/)
    upstream.set({ status: 503, text: 'down' })
    // The round under way when the upstream went down may have asked many before its first 503;
    // the one after it starts with the upstream down.
    await waitFor(async () => (await round())?.outcome === 'failed', 5000)
    const first = (await round())!
    await waitFor(async () => (await round())!.at > first.at, 5000)
    const failed = (await round())!
    expect(failed.outcome).toBe('failed')
    expect(failed.contexts).toBe(CONTEXTS)
    expect(failed.asked).toBeLessThanOrEqual(4)
    stop()
  }, 20_000)
})
