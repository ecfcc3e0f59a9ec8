// Proxy mode's re-ask round (CONTRACT §10: a change reaches an open tab within 2 s) against many
// held contexts and a slow upstream: a round asks them 4 at a time, so it lasts contexts × answer
// time / 4 (here 200 × 200 ms / 4 = 10 s; 10,000 contexts at 2 s are about 80 minutes). What an
// open tab (a live client in Node, as a browser's) sees of a change the round finds early.
import { afterEach, describe, expect, it } from 'vitest'
import type { FlagServer } from '@holdfast/server'
import { liveClient, pollUntil } from '../support/streamingOfrep'
import { evaluate, startServer, waitFor } from './helpers'
import { startUpstream } from './relay-fakes'

const CONTEXTS = 200
const cleanup: Array<() => unknown> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

type Status = { reaskRunning?: { contexts: number; asked: number } }
const status = async (relay: FlagServer) => (await (await fetch(`${relay.url}/holdfast/v1/status`)).json()) as Status

describe('a re-ask round that lasts long', () => {
  it('tells the open tabs of a change as soon as it finds one, asking the users seen most recently first', async () => {
    // The kill switch is turned for one segment: the user of the open tab.
    let killed = false
    const answer = (context: Record<string, unknown>) => ({ flags: [{ key: 'checkout', value: !(killed && context.targetingKey === 'user-1'), reason: 'TARGETING_MATCH' }] })
    const upstream = await startUpstream({ ofrep: answer })
    const relay = await startServer({ flags: undefined, upstream: upstream.url, pollIntervalSeconds: 0.2, reaskRoundMs: 500, liveUpdates: { recoveryWindowMs: 0 } })
    // Two hundred users came by earlier (their tabs closed, or idle); then the tab of user-1 opens.
    for (let i = 0; i < CONTEXTS; i += 20) {
      await Promise.all(Array.from({ length: 20 }, (_, j) => evaluate(relay, { targetingKey: `visitor-${i + j}` }).then((r) => r.arrayBuffer())))
    }
    upstream.set(() => ({ delayMs: 200, then: { ofrep: answer } }))
    const tab = liveClient(relay.url, 'reask-news', cleanup)
    await tab.start()
    expect(tab.getGate('checkout')).toBe(true)
    await pollUntil(() => relay.handler.stream!.connections() === 1, 5000, 'the stream')
    // A round is under way that began after the tab's answer and has asked for its user already
    // (the first 4 answered: the tab's user is among the first asked).
    await waitFor(async () => {
      const running = (await status(relay)).reaskRunning
      return running !== undefined && running.contexts === CONTEXTS + 1 && running.asked >= 4
    }, 15_000)

    killed = true
    const took = await pollUntil(() => tab.getGate('checkout') === false, 15_000, 'the change in the tab')
    // Before: the round asked the least recently used first (user-1 last, ~10 s in), the next
    // round came only when this one ended, and its notice went out only when the whole round
    // ended: the tab saw the change 10–20 s late here, more than an hour with 10,000 users.
    expect(took).toBeLessThan(2000)
  }, 40_000)

  it('a change for everyone found early in a long round reaches the tab at once, with one notice, not one per context', async () => {
    let plan = 'old'
    const answer = () => ({ flags: [{ key: 'plan', value: plan, reason: 'STATIC' }] })
    const upstream = await startUpstream({ ofrep: answer })
    // The default bound (a minute): this round of 10 s runs whole.
    const relay = await startServer({ flags: undefined, upstream: upstream.url, pollIntervalSeconds: 0.2, liveUpdates: { recoveryWindowMs: 0 } })
    for (let i = 0; i < CONTEXTS; i += 20) {
      await Promise.all(Array.from({ length: 20 }, (_, j) => evaluate(relay, { targetingKey: `visitor-${i + j}` }).then((r) => r.arrayBuffer())))
    }
    upstream.set(() => ({ delayMs: 200, then: { ofrep: answer } }))
    const tab = liveClient(relay.url, 'reask-news-all', cleanup)
    await tab.start()
    await pollUntil(() => relay.handler.stream!.connections() === 1, 5000, 'the stream')
    await waitFor(async () => {
      const running = (await status(relay)).reaskRunning
      return running !== undefined && running.contexts === CONTEXTS + 1 && running.asked >= 4
    }, 15_000)
    const noticesBefore = relay.handler.stream!.sent()

    plan = 'new'
    const took = await pollUntil(() => tab.getValue<string>('plan', 'none') === 'new', 15_000, 'the change in the tab')
    // Before: the notice waited for the end of the round (~10 s here).
    expect(took).toBeLessThan(2000)
    // The round goes on and finds the same change in every other context: news once, not 200 times
    // (each notice has every open tab refetch).
    await waitFor(async () => (await status(relay)).reaskRunning === undefined, 20_000)
    expect(relay.handler.stream!.sent() - noticesBefore).toBeLessThanOrEqual(2)
  }, 60_000)

  it('rounds cut short by the bound still ask every held context in turn, idle or not', async () => {
    const answer = () => ({ flags: [{ key: 'plan', value: 'same', reason: 'STATIC' }] })
    const upstream = await startUpstream({ ofrep: answer })
    const relay = await startServer({ flags: undefined, upstream: upstream.url, pollIntervalSeconds: 0.05, reaskRoundMs: 100, liveUpdates: { recoveryWindowMs: 0 } })
    for (let i = 0; i < CONTEXTS; i += 20) {
      await Promise.all(Array.from({ length: 20 }, (_, j) => evaluate(relay, { targetingKey: `visitor-${i + j}` }).then((r) => r.arrayBuffer())))
    }
    upstream.set(() => ({ delayMs: 20, then: { ofrep: answer } }))
    const from = upstream.requests.length
    const tab = liveClient(relay.url, 'reask-news-sweep', cleanup)
    await tab.start()
    // A round asks about 20 here: the tab's user each round, and the idle ones in turn. (Asking
    // only the users seen most recently would leave an idle tab's user unasked for good: a tab with
    // its stream open sends nothing until a notice comes.)
    const askedFor = () => new Set(upstream.requests.slice(from).map((r) => (JSON.parse(r.body || '{}') as { context?: { targetingKey?: string } }).context?.targetingKey))
    await waitFor(() => Array.from({ length: CONTEXTS }, (_, i) => `visitor-${i}`).every((key) => askedFor().has(key)), 20_000)
    const rounds = ((await (await fetch(`${relay.url}/holdfast/v1/status`)).json()) as { reask?: { contexts: number; asked: number } }).reask
    expect(rounds?.contexts).toBe(CONTEXTS + 1)
    expect(rounds!.asked).toBeLessThan(CONTEXTS)
  }, 40_000)

  it('a change for everyone found by rounds cut at their bound makes one notice, not one per round until the sweep has asked every context', async () => {
    let plan = 'old'
    const answer = () => ({ flags: [{ key: 'plan', value: plan, reason: 'STATIC' }] })
    const upstream = await startUpstream({ ofrep: answer })
    // Rounds of 300 ms ask about 60 contexts each: the sweep of 200 takes several rounds.
    const relay = await startServer({ flags: undefined, upstream: upstream.url, pollIntervalSeconds: 0.05, reaskRoundMs: 300, liveUpdates: { recoveryWindowMs: 0 } })
    for (let i = 0; i < CONTEXTS; i += 20) {
      await Promise.all(Array.from({ length: 20 }, (_, j) => evaluate(relay, { targetingKey: `visitor-${i + j}` }).then((r) => r.arrayBuffer())))
    }
    upstream.set(() => ({ delayMs: 20, then: { ofrep: answer } }))
    const tab = liveClient(relay.url, 'reask-news-cut', cleanup)
    await tab.start()
    await pollUntil(() => relay.handler.stream!.connections() === 1, 5000, 'the stream')
    const noticesBefore = relay.handler.stream!.sent()
    const from = upstream.requests.length

    plan = 'new'
    await pollUntil(() => tab.getValue<string>('plan', 'none') === 'new', 5000, 'the change in the tab')
    // Every idle context asked since the change: the sweep found it in each of them.
    const askedFor = () => new Set(upstream.requests.slice(from).map((r) => (JSON.parse(r.body || '{}') as { context?: { targetingKey?: string } }).context?.targetingKey))
    await waitFor(() => Array.from({ length: CONTEXTS }, (_, i) => `visitor-${i}`).every((key) => askedFor().has(key)), 20_000)
    await new Promise((resolve) => setTimeout(resolve, 500))
    // Before: each round forgot what the one before had told, and its first idle context still
    // holding 'old' was news again: a notice (every open tab refetching, each refetch going
    // upstream) every round for as long as the sweep took (with 10,000 contexts, hours).
    expect(relay.handler.stream!.sent() - noticesBefore).toBeLessThanOrEqual(2)
  }, 60_000)
})

