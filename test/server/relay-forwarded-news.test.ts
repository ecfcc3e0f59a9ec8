// Proxy mode (CONTRACT §10): a change the relay first learns of through a user's own request (its
// bulk request is forwarded and the answer replaces what was held) is news for that user's other
// devices, whose streams are open and who ask nothing until a notice comes. What those devices see,
// and that unique contexts (a crawler) or unchanged answers make no notice.
import { afterEach, describe, expect, it } from 'vitest'
import { liveClient, pollUntil } from '../support/streamingOfrep'
import { evaluate, startServer, waitFor } from './helpers'
import { startUpstream } from './relay-fakes'

const cleanup: Array<() => unknown> = []
// Two devices of one user: their own headers (not forwarded: one context to the relay) keep them
// from sharing answers as two tabs of one browser would.
const device = (name: string) => ({ headers: { 'X-Device': name } })
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

describe('a change found by a forwarded request', () => {
  it("reaches the user's other devices with an open stream, with one notice, and a crawler of new contexts makes none", async () => {
    // The change is made for one user (a segment): the other contexts held keep 'old'.
    let plan = 'old'
    const answer = (context: Record<string, unknown>) => ({ flags: [{ key: 'plan', value: context.targetingKey === 'user-1' ? plan : 'old', reason: 'STATIC' }] })
    const upstream = await startUpstream({ ofrep: answer })
    // No round on its own within the test: the rounds are asked for (admin refresh) where it matters.
    const relay = await startServer({ flags: undefined, upstream: upstream.url, pollIntervalSeconds: 3600, adminKey: 'admin', liveUpdates: { recoveryWindowMs: 0 } })
    const laptop = liveClient(relay.url, 'forwarded-news-laptop', cleanup, device('laptop'))
    const phone = liveClient(relay.url, 'forwarded-news-phone', cleanup, device('phone'))
    await Promise.all([laptop.start(), phone.start()])
    expect(phone.getValue('plan', 'none')).toBe('old')
    await pollUntil(() => relay.handler.stream!.connections() === 2, 5000, 'the streams')
    const stream = relay.handler.stream!

    // A crawler of 50 contexts never seen, and the same users asking again unchanged: no news.
    for (let i = 0; i < 50; i += 10) await Promise.all(Array.from({ length: 10 }, (_, j) => evaluate(relay, { targetingKey: `crawler-${i + j}` }).then((r) => r.arrayBuffer())))
    for (let i = 0; i < 10; i++) await (await evaluate(relay, { targetingKey: 'crawler-1' })).arrayBuffer()
    await laptop.refresh()
    await new Promise((resolve) => setTimeout(resolve, 400))
    expect(stream.sent()).toBe(0)

    // The change is found by the laptop's own request.
    plan = 'new'
    await laptop.refresh()
    expect(laptop.getValue('plan', 'none')).toBe('new')
    // A round asked after it finds nothing new (it compares against the laptop's answer).
    const round = await fetch(`${relay.url}/holdfast/v1/refresh`, { method: 'POST', headers: { Authorization: 'Bearer admin' } })
    expect(((await round.json()) as { changed: string[] }).changed).toEqual([])
    // Before: the phone, stream open, kept 'old' until it asked by itself (here: never).
    const took = await pollUntil(() => phone.getValue<string>('plan', 'none') === 'new', 5000, 'the change on the phone')
    expect(took).toBeLessThan(2000)
    // One notice (one per open stream), not one per request: the devices' refetches and the
    // crawler's contexts asked again are no change.
    for (let i = 0; i < 20; i += 10) await Promise.all(Array.from({ length: 10 }, (_, j) => evaluate(relay, { targetingKey: `crawler-${i + j}` }).then((r) => r.arrayBuffer())))
    await laptop.refresh()
    await new Promise((resolve) => setTimeout(resolve, 400))
    expect(stream.sent()).toBe(2)

    // A second change, found again by the laptop's request, is news again: with the next round
    // (see the last test), which itself finds nothing.
    plan = 'newer'
    await laptop.refresh()
    await new Promise((resolve) => setTimeout(resolve, 400))
    expect(stream.sent()).toBe(2)
    const next = await fetch(`${relay.url}/holdfast/v1/refresh`, { method: 'POST', headers: { Authorization: 'Bearer admin' } })
    expect(((await next.json()) as { changed: string[] }).changed).toEqual([])
    await waitFor(() => phone.getValue<string>('plan', 'none') === 'newer', 5000)
    await new Promise((resolve) => setTimeout(resolve, 400))
    expect(stream.sent()).toBe(4)
  }, 30_000)

  it('a change for everyone found by many users\' own requests makes one notice, not one per request', async () => {
    let plan = 'old'
    const answer = () => ({ flags: [{ key: 'plan', value: plan, reason: 'STATIC' }] })
    const upstream = await startUpstream({ ofrep: answer })
    const relay = await startServer({ flags: undefined, upstream: upstream.url, pollIntervalSeconds: 3600, liveUpdates: { recoveryWindowMs: 0 } })
    for (let i = 0; i < 40; i += 10) await Promise.all(Array.from({ length: 10 }, (_, j) => evaluate(relay, { targetingKey: `user-${i + j + 2}` }).then((r) => r.arrayBuffer())))
    const phone = liveClient(relay.url, 'forwarded-news-many', cleanup)
    await phone.start()
    await pollUntil(() => relay.handler.stream!.connections() === 1, 5000, 'the stream')

    plan = 'new'
    // Forty users come back, one after another, each request finding the change.
    for (let i = 0; i < 40; i++) await (await evaluate(relay, { targetingKey: `user-${i + 2}` })).arrayBuffer()
    await pollUntil(() => phone.getValue<string>('plan', 'none') === 'new', 5000, 'the change on the phone')
    await new Promise((resolve) => setTimeout(resolve, 400))
    expect(relay.handler.stream!.sent()).toBe(1)
  }, 30_000)

  it('a flag whose value the upstream draws anew at each evaluation does not make two devices of one user refetch in a loop', async () => {
    let draws = 0
    const answer = () => ({ flags: [{ key: 'nonce', value: `draw-${++draws}`, reason: 'STATIC' }] })
    const upstream = await startUpstream({ ofrep: answer })
    const relay = await startServer({ flags: undefined, upstream: upstream.url, pollIntervalSeconds: 3600, liveUpdates: { recoveryWindowMs: 0 } })
    const laptop = liveClient(relay.url, 'forwarded-news-loop-laptop', cleanup, device('laptop'))
    // The phone is on a slower network: its refetch reaches the relay 300 ms after the laptop's.
    const slow: typeof fetch = async (input, init) => (await new Promise((resolve) => setTimeout(resolve, 300)), fetch(input, init))
    const phone = liveClient(relay.url, 'forwarded-news-loop-phone', cleanup, { ...device('phone'), fetch: slow })
    await Promise.all([laptop.start(), phone.start()])
    await pollUntil(() => relay.handler.stream!.connections() === 2, 5000, 'the streams')
    await laptop.refresh()
    await new Promise((resolve) => setTimeout(resolve, 1500))
    const requests = upstream.requests.length
    await new Promise((resolve) => setTimeout(resolve, 3000))
    // Unbounded, each device's refetch found a change in the other's answer: a notice every
    // ~500 ms (about a dozen upstream requests here, and every open tab refetching), for good.
    // Such a change goes out with the next round (one a poll interval), as a round's own finding.
    expect(upstream.requests.length - requests).toBe(0)
  }, 30_000)
})
