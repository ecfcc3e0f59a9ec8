// `POST /holdfast/v1/refresh` in proxy mode asks the upstream again for every context held, 4 at a
// time. Against a slow but healthy upstream and many contexts that round is long (10,000 contexts
// at 2 s an answer: about 80 minutes), and the operator's call must not hang for it: it answers
// within `refreshAnswerWithinMs` with how far the round got, and the round goes on. Scaled down
// here: 40 contexts, 200 ms an answer (a round of about 2 s), a bound of 300 ms.
import { describe, expect, it } from 'vitest'
import { evaluate, startServer, waitFor } from './helpers'
import { startUpstream } from './relay-fakes'

const CONTEXTS = 40

type Refreshed = { outcome: string; changed: string[]; contexts?: number; asked?: number; startedAt?: number; version: string | null }

describe('a refresh against a long round of re-asks', () => {
  it('answers 202 with the progress within the bound; a refresh meanwhile joins the round; the round finishes', async () => {
    let value = 'a'
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'banner', value, reason: 'STATIC' }] }) })
    const relay = await startServer({ flags: undefined, upstream: upstream.url, adminKey: 'adm', refreshAnswerWithinMs: 300 })
    for (let i = 0; i < CONTEXTS; i += 10) {
      await Promise.all(Array.from({ length: 10 }, (_, j) => evaluate(relay, { targetingKey: `visitor-${i + j}` }).then((r) => r.arrayBuffer())))
    }
    value = 'b'
    upstream.set(() => ({ delayMs: 200, then: { ofrep: () => ({ flags: [{ key: 'banner', value, reason: 'STATIC' }] }) } }))
    const before = upstream.requests.length
    const refresh = async () => {
      const started = Date.now()
      const response = await fetch(`${relay.url}/holdfast/v1/refresh`, { method: 'POST', headers: { Authorization: 'Bearer adm' }, signal: AbortSignal.timeout(10_000) })
      return { status: response.status, body: (await response.json()) as Refreshed, tookMs: Date.now() - started }
    }

    const first = await refresh()
    // Before: the call waited for the whole round (about 2 s here, hours in production).
    expect(first.tookMs).toBeLessThan(1500)
    expect(first.status).toBe(202)
    expect(first.body.outcome).toBe('running')
    expect(first.body.contexts).toBe(CONTEXTS)
    expect(first.body.asked).toBeLessThan(CONTEXTS)
    // What it found so far is already named: the first answers changed `banner`.
    expect(first.body.changed).toEqual(first.body.asked! > 0 ? ['banner'] : [])

    // A second call joins the running round: the same start, further along, no second round.
    const second = await refresh()
    expect(second.status).toBe(202)
    expect(second.body.startedAt).toBe(first.body.startedAt)
    expect(second.body.asked).toBeGreaterThanOrEqual(first.body.asked!)

    // The status says so too, while it runs.
    type Running = { reaskRunning?: { at: number; contexts: number; asked: number } }
    const running = ((await (await fetch(`${relay.url}/holdfast/v1/status`)).json()) as Running).reaskRunning
    expect(running).toMatchObject({ at: first.body.startedAt, contexts: CONTEXTS })

    // The round goes on in the background and ends: every context asked once, the status says so.
    await waitFor(async () => ((await (await fetch(`${relay.url}/holdfast/v1/status`)).json()) as { reask?: { asked: number } }).reask?.asked === CONTEXTS, 8000)
    expect(upstream.requests.length - before).toBe(CONTEXTS)
    expect(((await (await fetch(`${relay.url}/holdfast/v1/status`)).json()) as Running).reaskRunning).toBeUndefined()
    const flags = (await (await evaluate(relay, { targetingKey: 'visitor-7' })).json()) as { flags: { key: string; value: unknown }[] }
    expect(flags.flags.find((f) => f.key === 'banner')?.value).toBe('b')
  }, 20_000)

  it('a round within the bound answers as before: 200 with the whole result', async () => {
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'banner', value: true, reason: 'STATIC' }] }) })
    const relay = await startServer({ flags: undefined, upstream: upstream.url, adminKey: 'adm', refreshAnswerWithinMs: 5000 })
    await (await evaluate(relay, { targetingKey: 'one' })).arrayBuffer()
    const response = await fetch(`${relay.url}/holdfast/v1/refresh`, { method: 'POST', headers: { Authorization: 'Bearer adm' } })
    expect(response.status).toBe(200)
    expect(((await response.json()) as Refreshed)).toMatchObject({ outcome: 'unchanged', contexts: 1, asked: 1, changed: [] })
  }, 20_000)
})

describe('a refresh of definitions (--flags-url) against an upstream that does not answer', () => {
  it('answers 202 within the bound instead of waiting out a long upstream timeout', async () => {
    const upstream = await startUpstream({ document: { flags: { banner: { state: 'ENABLED', variants: { on: true }, defaultVariant: 'on' } } } })
    const relay = await startServer({ flags: undefined, flagsUrl: `${upstream.url}/flags.json`, adminKey: 'adm', upstreamTimeoutMs: 10_000, pollIntervalSeconds: 3600, refreshAnswerWithinMs: 300 })
    upstream.set('hang')
    const started = Date.now()
    const response = await fetch(`${relay.url}/holdfast/v1/refresh`, { method: 'POST', headers: { Authorization: 'Bearer adm' }, signal: AbortSignal.timeout(15_000) })
    const body = (await response.json()) as Refreshed
    // Before: the call waited the whole upstream timeout (here 10 s; it may be set up to 10 minutes).
    expect(Date.now() - started).toBeLessThan(2000)
    expect(response.status).toBe(202)
    expect(body.outcome).toBe('running')
    // The version served meanwhile, as the status names it.
    const status = (await (await fetch(`${relay.url}/holdfast/v1/status`)).json()) as { version: string | null }
    expect(body.version).toBe(status.version)
    expect(body.version).not.toBeNull()
  }, 30_000)
})
