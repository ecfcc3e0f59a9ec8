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

type Status = { reaskRunning?: { at: number; contexts: number; asked: number }; reask?: { at: number } }
const status = async (relay: FlagServer) => (await (await fetch(`${relay.url}/holdfast/v1/status`)).json()) as Status
const keyOf = (request: { body: string }) => (JSON.parse(request.body || '{}') as { context?: { targetingKey?: string } }).context?.targetingKey
const visitorsAskedSince = (upstream: { requests: Array<{ body: string }> }, from: number) => upstream.requests.slice(from).filter((r) => keyOf(r)?.startsWith('visitor-')).length
/**
 * A round under way that began after the tab's answer (it holds the tab's user too) and has had 4
 * answers; resolves with when it began (its `at`). A round already running when the upstream turned
 * slow must end first: 10 s on a quiet machine, past 20 s on a loaded one. Awaited for up to 60 s.
 */
async function roundWithTheTab(relay: FlagServer): Promise<number> {
  let at = 0
  await waitFor(async () => {
    const running = (await status(relay)).reaskRunning
    if (running !== undefined && running.contexts === CONTEXTS + 1 && running.asked >= 4) at = running.at
    return at > 0
  }, 60_000)
  return at
}

/**
 * Waits until rounds cut at their bound have asked every one of the CONTEXTS visitors since the
 * upstream's request number `from`, and resolves with those still unasked (none: the sweep went
 * round). Counted in requests, not in milliseconds: a round asks 4 at a time until its bound, at
 * least 4 then, and every second ask goes to the sweep (the others to the users seen most
 * recently), so it needs at most 5 requests for 2 of its contexts: 500 for 200. A loaded machine
 * makes the rounds shorter in asks (4 or 5 of 150 ms answers here: over 20 s for the sweep), not
 * the sweep's share of them. A relay whose rounds skip the idle contexts leaves them unasked
 * however many requests go by: given 3 requests a context, it fails with their names.
 */
async function sweepLeft(upstream: { requests: Array<{ body: string }> }, from: number): Promise<string[]> {
  const visitors = Array.from({ length: CONTEXTS }, (_, i) => `visitor-${i}`)
  const unasked = () => {
    const asked = new Set(upstream.requests.slice(from).map((r) => (JSON.parse(r.body || '{}') as { context?: { targetingKey?: string } }).context?.targetingKey))
    return visitors.filter((key) => !asked.has(key))
  }
  await waitFor(() => unasked().length === 0 || upstream.requests.length - from >= 3 * CONTEXTS, 90_000)
  return unasked()
}

describe('a re-ask round that lasts long', () => {
  it('tells the open tabs of a change as soon as it finds one, asking the users seen most recently first', async () => {
    // The kill switch is turned for one segment: the user of the open tab.
    let killed = false
    // When the upstream first answered with the change (read after its delay, as it answers).
    let changedAt: number | undefined
    const answer = (context: Record<string, unknown>) => {
      const off = killed && context.targetingKey === 'user-1'
      if (off) changedAt ??= Date.now()
      return { flags: [{ key: 'checkout', value: !off, reason: 'TARGETING_MATCH' }] }
    }
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
    await roundWithTheTab(relay)

    killed = true
    const from = upstream.requests.length
    await pollUntil(() => tab.getGate('checkout') === false, 30_000, 'the change in the tab')
    const seenAt = Date.now()
    // Before: the round asked the least recently used first (user-1 last, ~10 s in), the next
    // round came only when this one ended, and its notice went out only when the whole round
    // ended: the tab saw the change 10–20 s late here, more than an hour with 10,000 users.
    // How soon the relay asks again is counted in what it asked meanwhile (a loaded machine slows
    // the answers, not their order): a few visitors, not the ~200 of a whole round.
    expect(visitorsAskedSince(upstream, from)).toBeLessThan(CONTEXTS / 2)
    // CONTRACT §10, from the change reaching the relay (the upstream's answer carrying it) to the
    // tab: the notice, then the tab's refetch.
    expect(seenAt - changedAt!).toBeLessThan(2000)
  }, 120_000)

  it('a change for everyone found early in a long round reaches the tab at once, with one notice, not one per context', async () => {
    let plan = 'old'
    let changedAt: number | undefined
    const answer = () => {
      if (plan === 'new') changedAt ??= Date.now()
      return { flags: [{ key: 'plan', value: plan, reason: 'STATIC' }] }
    }
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
    const roundAt = await roundWithTheTab(relay)
    const noticesBefore = relay.handler.stream!.sent()

    plan = 'new'
    await pollUntil(() => tab.getValue<string>('plan', 'none') === 'new', 30_000, 'the change in the tab')
    // Before: the notice waited for the end of the round (~10 s here). CONTRACT §10, from the
    // first upstream answer carrying the change to the tab.
    expect(Date.now() - changedAt!).toBeLessThan(2000)
    // The round goes on and finds the same change in every other context: news once, not 200 times
    // (each notice has every open tab refetch). The round lasts about 13 s on a quiet machine (200
    // contexts at 200 ms, 4 at a time, and the users seen most recently asked again in a quarter of
    // its turns), past 20 s on a loaded one. Its end is read in the status as the latest round ended
    // (`reask`), not as a moment with no round running: the next round begins within a poll
    // interval (200 ms), and a loaded machine's status requests could miss that gap (a 15 s round
    // waited for 31 s), then the next ones too (40 s: failed).
    await waitFor(async () => ((await status(relay)).reask?.at ?? 0) >= roundAt, 100_000)
    expect(relay.handler.stream!.sent() - noticesBefore).toBeLessThanOrEqual(2)
  }, 150_000)

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
    expect(await sweepLeft(upstream, from)).toEqual([])
    const rounds = ((await (await fetch(`${relay.url}/holdfast/v1/status`)).json()) as { reask?: { contexts: number; asked: number } }).reask
    expect(rounds?.contexts).toBe(CONTEXTS + 1)
    expect(rounds!.asked).toBeLessThan(CONTEXTS)
  }, 120_000)

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
    await pollUntil(() => tab.getValue<string>('plan', 'none') === 'new', 20_000, 'the change in the tab')
    // Every idle context asked since the change: the sweep found it in each of them.
    expect(await sweepLeft(upstream, from)).toEqual([])
    // Two more rounds ended (not a fixed 500 ms, which a loaded machine may fill with one round or
    // none): a relay still telling news each round has told it again by then.
    const ended = async () => (await status(relay)).reask?.at ?? 0
    for (let i = 0; i < 2; i++) {
      const last = await ended()
      await waitFor(async () => (await ended()) > last, 30_000)
    }
    // Before: each round forgot what the one before had told, and its first idle context still
    // holding 'old' was news again: a notice (every open tab refetching, each refetch going
    // upstream) every round for as long as the sweep took (with 10,000 contexts, hours).
    expect(relay.handler.stream!.sent() - noticesBefore).toBeLessThanOrEqual(2)
  }, 150_000)
})


// A round asks each held context once, the users seen most recently at its start. One over many
// contexts against a slow upstream outlasts many poll intervals (here 200 contexts at 100 ms an
// answer, 4 at a time: 5 s; 10,000 at 2 s: its whole bound, a minute). How late a change reaches
// an open tab is counted in what the relay asked meanwhile (requests for the other users), not
// in milliseconds: a loaded machine slows the rounds and the tab alike, and cannot turn a change
// found at once into one found after the whole round, nor the other way round.
describe('a change made for an open tab’s user just after a long round asked for it', () => {

  /** A relay holding CONTEXTS visitors' answers from an upstream answering `answer`, and user-1's tab listening to its stream. */
  async function relayWithTab(answer: (context: Record<string, unknown>) => unknown, label: string, liveUpdates: Record<string, unknown>) {
    const upstream = await startUpstream({ ofrep: answer })
    const relay = await startServer({ flags: undefined, upstream: upstream.url, pollIntervalSeconds: 0.05, liveUpdates })
    for (let i = 0; i < CONTEXTS; i += 20) {
      await Promise.all(Array.from({ length: 20 }, (_, j) => evaluate(relay, { targetingKey: `visitor-${i + j}` }).then((r) => r.arrayBuffer())))
    }
    const tab = liveClient(relay.url, label, cleanup)
    await tab.start()
    await pollUntil(() => relay.handler.stream!.connections() === 1, 5000, 'the stream')
    return { upstream, relay, tab }
  }

  it('is found at the next interval, not when the round has asked every other context', async () => {
    let plan = 'old'
    // When the upstream made each answer for user-1 (its value is read then, after the delay).
    const answeredUser1: number[] = []
    const answer = (context: Record<string, unknown>) => {
      if (context.targetingKey === 'user-1') answeredUser1.push(Date.now())
      return { flags: [{ key: 'plan', value: context.targetingKey === 'user-1' ? plan : 'old', reason: 'STATIC' }] }
    }
    const { upstream, relay, tab } = await relayWithTab(answer, 'reask-late', { recoveryWindowMs: 0 })
    const slowFrom = Date.now()
    upstream.set(() => ({ delayMs: 100, then: { ofrep: answer } }))
    // A round that began after the upstream turned slow has answered for the tab's user, the user
    // seen most recently: its first ask. About 200 contexts are left to it. (The round running when
    // the upstream turned slow ends first: 5 s quiet, over 15 s loaded; awaited for up to 60 s.)
    await waitFor(async () => {
      const running = (await status(relay)).reaskRunning
      return running !== undefined && running.at > slowFrom && answeredUser1.some((at) => at >= running.at)
    }, 60_000)

    plan = 'new'
    const from = upstream.requests.length
    await pollUntil(() => tab.getValue<string>('plan', 'none') === 'new', 20_000, 'the change in the tab')
    // Before: user-1 was asked again only by the next round, once this one had asked the ~200
    // others (5 s here; with 10,000 contexts at 2 s an answer, after its bound: a minute).
    // Now the rounds ask the users seen most recently again at each interval (a few visitors).
    expect(visitorsAskedSince(upstream, from)).toBeLessThan(CONTEXTS / 2)
  }, 100_000)

  /**
   * The tab of user-1 on a relay holding CONTEXTS visitors; the users `later` come by after the
   * tab's, the last of them `broken`: a context the upstream cannot evaluate any more (a rule that
   * crashes on its attributes, a 500), the user seen most recently. Once a round has ended at that
   * 500 and the tab's user has been answered since, the change is made for user-1: resolves with
   * how many visitors the upstream was asked for until the tab showed it.
   */
  async function changeAfterRoundsEndedByOneContext(label: string, later: string[], liveUpdates: Record<string, unknown>): Promise<number> {
    let plan = 'old'
    const answeredUser1: number[] = []
    const answer = (context: Record<string, unknown>) => {
      if (context.targetingKey === 'user-1') answeredUser1.push(Date.now())
      return { flags: [{ key: 'plan', value: context.targetingKey === 'user-1' ? plan : 'old', reason: 'STATIC' }] }
    }
    const { upstream, relay, tab } = await relayWithTab(answer, label, liveUpdates)
    for (const user of [...later, 'broken']) await (await evaluate(relay, { targetingKey: user })).arrayBuffer()
    upstream.set((request) => (keyOf(request) === 'broken' ? { status: 500, text: 'evaluation crashed' } : { delayMs: 100, then: { ofrep: answer } }))
    const since = Date.now()
    // After the round running when the upstream turned slow (5 s quiet, over 15 s loaded): up to 60 s.
    await waitFor(async () => {
      const reask = ((await (await fetch(`${relay.url}/holdfast/v1/status`)).json()) as { reask?: { at: number; outcome: string } }).reask
      return reask !== undefined && reask.at >= since && reask.outcome === 'failed'
    }, 60_000)
    const failedBy = Date.now()
    await pollUntil(() => answeredUser1.some((at) => at >= failedBy), 30_000, 'the tab’s user asked again')

    plan = 'new'
    const from = upstream.requests.length
    await pollUntil(() => tab.getValue<string>('plan', 'none') === 'new', 30_000, 'the change in the tab')
    return visitorsAskedSince(upstream, from)
  }

  it('one context the upstream fails alone (its 500), its user seen last, does not keep the rounds from the users seen before it', async () => {
    const asked = await changeAfterRoundsEndedByOneContext('reask-late-broken', ['later-1', 'later-2'], { recoveryWindowMs: 0 })
    // Before (without `cutBy`): every round asked that context first, and its 500 ended the round
    // after four asks (it, the user after it, and two of the sweep): the tab's user was reached only
    // by the sweep, two contexts a round, after it had asked the ~200 others (with 10,000
    // contexts, hours). Now it is asked last among the users seen most recently, and not again
    // with them at each interval, until it is answered.
    expect(asked).toBeLessThan(CONTEXTS / 2)
  }, 150_000)

  it('the rounds ending at that one context’s 500 are no outage: a change is not held back as at the end of one', async () => {
    // The default recovery window (10 s), each notice it spreads drawn at its very end.
    const asked = await changeAfterRoundsEndedByOneContext('reask-late-spread', ['later-1'], { recoveryWindowMs: 10_000, random: () => 0.999 })
    // Before: a round that ended at a 500 started a failing spell, whatever the upstream answered
    // the other contexts in it, and a change found within a minute of one was spread over the
    // recovery window, as when an upstream comes back after an outage (0-10 s late, 5 s on
    // average; here 10 s: hundreds of requests of the rounds went by), for as long as the rounds
    // kept meeting that one context.
    expect(asked).toBeLessThan(CONTEXTS / 2)
  }, 150_000)
})
