// Proxy mode with a bound on the contexts held (`maxContexts`, least recently used out first): a
// re-ask round works from the list it took when it began, and users who come meanwhile push idle
// contexts out. What the users seen since, and the open tabs, see of the round that follows.
import { afterEach, describe, expect, it } from 'vitest'
import { evaluate, startServer, waitFor } from './helpers'
import { startUpstream } from './relay-fakes'

const cleanup: Array<() => unknown> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

const keyOf = (body: string) => (JSON.parse(body || '{}') as { context?: { targetingKey?: string } }).context?.targetingKey ?? ''

describe('a re-ask round over contexts evicted while it runs', () => {
  it('neither puts them back (pushing out the users seen since) nor tells the open tabs of a change', async () => {
    const answer = () => ({ flags: [{ key: 'plan', value: 'same', reason: 'STATIC' }] })
    // The idle visitors answer slowly (the round takes a while), the new users at once.
    const upstream = await startUpstream((request) => (keyOf(request.body).startsWith('visitor-') ? { delayMs: 300, then: { ofrep: answer } } : { ofrep: answer }))
    const relay = await startServer({ flags: undefined, upstream: upstream.url, maxContexts: 8, pollIntervalSeconds: 3600, adminKey: 'admin', liveUpdates: { recoveryWindowMs: 0 } })
    for (let i = 0; i < 8; i++) await (await evaluate(relay, { targetingKey: `visitor-${i}` })).arrayBuffer()
    // One tab's stream open (its context is not held here: the bound stays the visitors' and newcomers').
    const tab = new AbortController()
    cleanup.push(() => tab.abort())
    const opened = await fetch(`${relay.url}/holdfast/v1/stream`, { signal: tab.signal })
    expect(opened.status).toBe(200)
    await waitFor(() => relay.handler.stream!.connections() === 1, 5000)

    const round = fetch(`${relay.url}/holdfast/v1/refresh`, { method: 'POST', headers: { Authorization: 'Bearer admin' } }).then((r) => r.json())
    await waitFor(() => upstream.requests.filter((r) => keyOf(r.body).startsWith('visitor-')).length >= 8 + 4, 5000, 5)
    // Eight new users come while the round's first four requests are out: every visitor is evicted.
    for (let i = 0; i < 8; i++) await (await evaluate(relay, { targetingKey: `newcomer-${i}` })).arrayBuffer()
    const evictedAt = upstream.requests.length
    await round
    await new Promise((resolve) => setTimeout(resolve, 400))

    // Before: the four visitors not asked yet were asked all the same, and all eight put back,
    // each counted as every flag changed: a notice to every open tab, for nothing.
    expect(upstream.requests.slice(evictedAt).map((r) => keyOf(r.body))).toEqual([])
    expect(relay.handler.stream!.sent()).toBe(0)
    // The users seen since are still held: with the upstream down they are served what they got.
    upstream.set({ status: 500, text: 'down' })
    const statuses = await Promise.all(Array.from({ length: 8 }, (_, i) => evaluate(relay, { targetingKey: `newcomer-${i}` }).then(async (r) => (await r.arrayBuffer(), r.status))))
    expect(statuses).toEqual(Array(8).fill(200))
  }, 30_000)
})

describe('a re-ask round over contexts still held when its answers come', () => {
  it('does not make them the most recently used: the users seen since the round began are not pushed out for them', async () => {
    const answer = () => ({ flags: [{ key: 'plan', value: 'same', reason: 'STATIC' }] })
    const upstream = await startUpstream({ ofrep: answer })
    // The round's answers for the idle visitors are held back until three new users have come: on a
    // loaded machine the first test's 300 ms delay ended while the new users were still coming.
    let hold = false
    let release = () => {}
    const released = new Promise<void>((resolve) => (release = resolve))
    const holding: typeof fetch = async (input, init) => {
      const response = await fetch(input, init)
      if (hold && keyOf(String(init?.body)).startsWith('visitor-')) await released
      return response
    }
    const relay = await startServer({ flags: undefined, upstream: upstream.url, maxContexts: 8, pollIntervalSeconds: 3600, adminKey: 'admin', ...({ fetch: holding } as object) })
    for (let i = 0; i < 8; i++) await (await evaluate(relay, { targetingKey: `visitor-${i}` })).arrayBuffer()

    hold = true
    const round = fetch(`${relay.url}/holdfast/v1/refresh`, { method: 'POST', headers: { Authorization: 'Bearer admin' } }).then((r) => r.json())
    await waitFor(() => upstream.requests.filter((r) => keyOf(r.body).startsWith('visitor-')).length >= 8 + 4, 5000, 5)
    for (let i = 0; i < 3; i++) await (await evaluate(relay, { targetingKey: `newcomer-${i}` })).arrayBuffer()
    // The round's answers land for the visitors still held, and it asks the rest of them.
    hold = false
    release()
    await round
    for (let i = 3; i < 8; i++) await (await evaluate(relay, { targetingKey: `newcomer-${i}` })).arrayBuffer()

    // Eight users seen since the visitors' last request: the eight held. Before, each visitor the
    // round answered became the most recently used, and the newcomers that came first were pushed
    // out for them: with the upstream down those users got 503, nothing held for them.
    upstream.set({ status: 500, text: 'down' })
    const statuses = await Promise.all(Array.from({ length: 8 }, (_, i) => evaluate(relay, { targetingKey: `newcomer-${i}` }).then(async (r) => (await r.arrayBuffer(), r.status))))
    expect(statuses).toEqual(Array(8).fill(200))
  }, 30_000)
})

describe('a re-ask round over contexts evicted while they wait for a turn (maxUpstreamRequests)', () => {
  it('does not count them as asked or answered', async () => {
    const answer = () => ({ flags: [{ key: 'plan', value: 'same', reason: 'STATIC' }] })
    // The new users answer slowly: with one request at a time, the round's requests wait behind theirs.
    const upstream = await startUpstream((request) => (keyOf(request.body).startsWith('newcomer-') ? { delayMs: 150, then: { ofrep: answer } } : { ofrep: answer }))
    const relay = await startServer({ flags: undefined, upstream: upstream.url, maxContexts: 8, maxUpstreamRequests: 1, pollIntervalSeconds: 3600, adminKey: 'admin' })
    for (let i = 0; i < 8; i++) await (await evaluate(relay, { targetingKey: `visitor-${i}` })).arrayBuffer()
    const visitorsAsked = upstream.requests.length
    // Eight new users come at once (one upstream request at a time), then the round begins: its
    // first requests wait their turn behind the new users', whose answers evict every visitor.
    const newcomers = Array.from({ length: 8 }, (_, i) => evaluate(relay, { targetingKey: `newcomer-${i}` }).then((r) => r.status))
    await waitFor(() => upstream.requests.length > visitorsAsked, 5000, 5)
    await new Promise((resolve) => setTimeout(resolve, 50)) // the other seven are waiting their turn
    const round = (await (await fetch(`${relay.url}/holdfast/v1/refresh`, { method: 'POST', headers: { Authorization: 'Bearer admin' } })).json()) as { asked: number; answered: number }
    expect(await Promise.all(newcomers)).toEqual(Array(8).fill(200))
    const visitorsAskedAgain = upstream.requests.slice(visitorsAsked).filter((r) => keyOf(r.body).startsWith('visitor-')).length
    expect(visitorsAskedAgain, upstream.requests.slice(visitorsAsked).map((r) => keyOf(r.body)).join()).toBe(0)
    // Before: asked 4, answered 4 (the four taken first), though the upstream was asked for none.
    expect(round).toMatchObject({ asked: 0, answered: 0 })
    expect(((await (await fetch(`${relay.url}/holdfast/v1/status`)).json()) as { reask: unknown }).reask).toMatchObject({ asked: 0, answered: 0 })
  }, 30_000)
})
