// Proxy mode against an upstream that is down: the relay absorbs the outage. Before, every browser
// request went upstream while it answered 500 (60 requests for 60 browser requests), so a fleet
// of browsers behind one relay hammered a flag service that was down or recovering.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { createGenerationStore, createRedisStore, createSharedContexts, createUpstreamSource, type FlagServer, type UpstreamSourceOptions } from '@holdfast/server'
import { recordCredentials } from '../../packages/server/src/flags/snapshotCredentials'
import { recordingLogger, startServer, tempDir, timed, waitFor } from './helpers'
import { useRedisFleet } from './redis-fleet'
import { startUpstream, type Behaviour } from './relay-fakes'

vi.setConfig({ testTimeout: 20_000 })

const answers = (version: string): Behaviour => ({
  ofrep: (context) => ({ flags: [{ key: 'banner', value: `${version} ${String(context.targetingKey)}`, reason: 'STATIC' }] }),
})
const down: Behaviour = { status: 500, text: 'Internal Server Error' }
// An upstream whose rules crash on one user's attributes (`"crash"`): 500 for that context, `otherwise` for the rest.
const crashesFor = (otherwise: Behaviour | (() => Behaviour) = answers('v1')) => (request: { body: string }): Behaviour =>
  request.body.includes('"crash"') ? down : typeof otherwise === 'function' ? otherwise() : otherwise

/** A proxy-mode source on an injected clock (`clock.at`, epoch ms), opened: close it when done. */
async function openSource(url: string, options: Partial<UpstreamSourceOptions> = {}) {
  const clock = { at: 1_800_000_000_000 }
  const source = createUpstreamSource({ url, maxShrinkPercent: 50, onUnauthorized: { mode: 'keep' }, timeoutMs: 2000, log: recordingLogger(), now: () => clock.at, ...options })
  await source.open()
  /** One user's bulk request, with no forwarded headers. */
  const ask = (targetingKey: string) => source.evaluate!({ context: { targetingKey }, headers: {} })
  return { source, clock, ask }
}

/** One user's bulk request with their tenant's key (`Bearer KEY`). */
const tenantAsk = (source: Awaited<ReturnType<typeof openSource>>['source']) => (targetingKey: string, key: string) => source.evaluate!({ context: { targetingKey }, headers: { authorization: `Bearer ${key}` } })

/**
 * Two of the busy tenant's users at once, both answered 429 (503 here: nothing held), then the
 * quiet tenant's new user 100 ms on: answered fresh, and the breaker still closed. Before each
 * fix, the two 429s opened the breaker for every key, and that user got 503 without asking.
 */
async function burstStaysOwn({ source, clock }: Awaited<ReturnType<typeof openSource>>, busyUsers: [string, string]) {
  const ask = tenantAsk(source)
  const burst = await Promise.all(busyUsers.map((user) => ask(user, 'busy')))
  expect(burst.map((answer) => answer.status)).toEqual([503, 503])
  clock.at += 100
  expect(await ask('q1', 'quiet')).toMatchObject({ status: 200, body: { flags: [{ value: 'v1 q1' }], metadata: { holdfast: { stale: false } } } })
  expect(source.relayStatus().upstream.breaker).toMatchObject({ state: 'closed' })
}

describe('proxy mode: a breaker on the upstream health', () => {
  it('while the upstream answers 500, browser requests are answered from what is held (or 503) without an upstream request each; one probe at a time on a backoff; the first success closes it', async () => {
    const upstream = await startUpstream(answers('v1'))
    const { source, clock, ask } = await openSource(upstream.url)
    try {
      const users = Array.from({ length: 10 }, (_, i) => `u${i}`)
      for (const user of users) expect(await ask(user)).toMatchObject({ status: 200, body: { metadata: { holdfast: { stale: false } } } })
      upstream.set(down)
      const before = upstream.requests.length
      // 60 browser requests for 10 users seen and 6 never seen, over 6 s of the relay's clock.
      for (let i = 0; i < 60; i++) {
        clock.at += 100
        if (i % 10 === 9) {
          const started = performance.now()
          const stranger = await ask(`new-${i}`)
          expect(stranger.status).toBe(503)
          expect(Number(stranger.headers?.['Retry-After'])).toBeGreaterThanOrEqual(1)
          // Honest and fast: no hang for a user the relay has nothing for.
          expect(performance.now() - started).toBeLessThan(1500)
          continue
        }
        const user = users[i % 10]
        const held = await ask(user)
        expect(held).toMatchObject({ status: 200, body: { flags: [{ key: 'banner', value: `v1 ${user}` }], metadata: { holdfast: { stale: true } } } })
      }
      const during = upstream.requests.length - before
      // Before: 60. Now two failures open it, and a probe goes about 1 s, 3 s after (6 s in all).
      expect(during).toBeLessThanOrEqual(6)
      const status = source.relayStatus()
      expect(status.upstream.state).toBe('failing')
      expect(status.upstream.breaker).toMatchObject({ state: 'open' })
      expect(status.upstream.breaker!.unasked).toBeGreaterThanOrEqual(50)
      expect(status.upstream.breaker!.nextProbeAt).toBeGreaterThan(clock.at - 30_000)

      // The upstream heals: the next probe closes the breaker, and every user is asked again at once.
      upstream.set(answers('v2'))
      clock.at += 30_000
      const healedAt = upstream.requests.length
      expect(await ask('u3')).toMatchObject({ status: 200, body: { flags: [{ value: 'v2 u3' }], metadata: { holdfast: { stale: false } } } })
      expect(source.relayStatus().upstream.breaker).toMatchObject({ state: 'closed' })
      for (const user of users) expect(await ask(user)).toMatchObject({ status: 200, body: { flags: [{ value: `v2 ${user}` }], metadata: { holdfast: { stale: false } } } })
      expect(await ask('newcomer')).toMatchObject({ status: 200, body: { flags: [{ value: 'v2 newcomer' }] } })
      expect(upstream.requests.length - healedAt).toBe(12)
    } finally {
      await source.close()
    }
  })

  it('the log line saying the breaker opened names the wait the status shows for the first probe (before: "the first in 2 s" for a probe due in 1.2 s)', async () => {
    const upstream = await startUpstream(answers('v1'))
    const log = recordingLogger()
    const { source, ask } = await openSource(upstream.url, { log })
    // The jitter at its top (+20 %): the first probe 1.2 s after the breaker opened.
    const random = vi.spyOn(Math, 'random').mockReturnValue(0.99)
    try {
      expect((await ask('u1')).status).toBe(200)
      upstream.set(down)
      await ask('u1')
      await ask('u2')
      const breaker = source.relayStatus().upstream.breaker!
      expect(breaker.state).toBe('open')
      const waitSeconds = (breaker.nextProbeAt! - breaker.openedAt!) / 1000
      expect(waitSeconds).toBeCloseTo(1.2, 1)
      const opened = log.lines.find((line) => line.includes('breaker open'))
      const said = Number(/the first in ([\d.]+) s/.exec(opened ?? '')?.[1])
      expect(said, opened).toBeCloseTo(waitSeconds, 1)
    } finally {
      random.mockRestore()
      await source.close()
    }
  })

  it('one context the upstream fails alone while it answers the others never opens it', async () => {
    const upstream = await startUpstream(crashesFor())
    const { source, clock, ask } = await openSource(upstream.url)
    try {
      const before = upstream.requests.length
      for (let i = 0; i < 10; i++) {
        clock.at += 100
        expect((await ask('crash')).status).toBe(503)
        expect(await ask(`u${i}`)).toMatchObject({ status: 200, body: { metadata: { holdfast: { stale: false } } } })
      }
      // Its own retries alone, with nobody else asking, do not open it either.
      for (let i = 0; i < 5; i++) expect((await ask('crash')).status).toBe(503)
      // Its 15 requests, the users' 10, and the canaries that found the upstream answering (at most
      // one a second of the relay's clock: 1 s here).
      expect(upstream.requests.length - before).toBeGreaterThanOrEqual(25)
      expect(upstream.requests.length - before).toBeLessThanOrEqual(27)
      expect(source.relayStatus().upstream.breaker).toMatchObject({ state: 'closed' })
    } finally {
      await source.close()
    }
  })

  it('one context the upstream fails alone leaves the status and /metrics saying the upstream is ok (its failure counted in refusedBy), until a second context fails', async () => {
    const upstream = await startUpstream(crashesFor())
    const server: FlagServer = await startServer({ flags: undefined, upstream: upstream.url, upstreamTimeoutMs: 2000, logger: recordingLogger() })
    const ask = (targetingKey: string) => fetch(`${server.url}/ofrep/v1/evaluate/flags`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ context: { targetingKey } }) })
    const status = async () => (await (await fetch(`${server.url}/holdfast/v1/status`)).json()) as any
    for (let i = 0; i < 3; i++) {
      expect((await ask(`u${i}`)).status).toBe(200)
      expect((await ask('crash')).status).toBe(503)
      // Before: `failing` (and an alert on it firing) after each of its requests, for one user.
      expect(await status()).toMatchObject({ stale: false, upstream: { state: 'ok', lastError: { httpStatus: 500 }, breaker: { state: 'closed' } }, refusedBy: { http: i + 1 } })
      const metrics = await (await fetch(`${server.url}/metrics`)).text()
      expect(metrics).toContain('holdfast_relay_upstream_state{state="ok"} 1')
      expect(metrics).toContain('holdfast_relay_stale 0')
    }
    // A real outage: the users' contexts fail too, and the status says so with the breaker.
    upstream.set(down)
    for (const user of ['u0', 'u1']) expect((await ask(user)).status).toBe(200)
    expect(await status()).toMatchObject({ stale: true, upstream: { state: 'failing', breaker: { state: 'open' } } })
  })

  // An outage that the "one context fails alone" rules took for one user's: before the canary, the
  // status said `ok` (nothing stale, no alert) and the breaker never opened, for as long as it lasted.
  it.each([
    ['one active user, another context answered last', ['u0', 'u0', 'u0']],
    ['only new users, within 5 s of the latest answer', ['new-0', 'new-1', 'new-2']],
  ])('a real 5xx outage with %s: one canary (the context answered last) fails too, so it is failing and open at once', async (_, askers) => {
    const upstream = await startUpstream(answers('v1'))
    const { source, clock, ask } = await openSource(upstream.url)
    try {
      for (const user of ['u0', 'u1']) expect((await ask(user)).status).toBe(200)
      upstream.set(down)
      const before = upstream.requests.length
      clock.at += 200
      await ask(askers[0])
      // Before: { state: 'ok', breaker closed } for good with one user, for 5 s with new ones.
      await waitFor(() => source.relayStatus().upstream.breaker!.state === 'open', 3000)
      expect(source.relayStatus()).toMatchObject({ stale: true, upstream: { state: 'failing', breaker: { state: 'open' } } })
      // The one request and the canary (u1's context, answered last), nothing more.
      expect(upstream.requests.slice(before).map((request) => JSON.parse(request.body).context.targetingKey)).toEqual([askers[0], 'u1'])
      for (const user of askers.slice(1)) {
        clock.at += 100
        await ask(user)
      }
      expect(upstream.requests.length - before).toBe(2)
    } finally {
      await source.close()
    }
  })

  it('/metrics says the outage one active user meets: failing, stale, the breaker open', async () => {
    const upstream = await startUpstream(answers('v1'))
    const server: FlagServer = await startServer({ flags: undefined, upstream: upstream.url, upstreamTimeoutMs: 2000, logger: recordingLogger() })
    const ask = (targetingKey: string) => server.handler.source.evaluate!({ context: { targetingKey }, headers: {} })
    for (const user of ['u0', 'u1']) expect((await ask(user)).status).toBe(200)
    upstream.set(down)
    expect(await ask('u0')).toMatchObject({ status: 200, body: { metadata: { holdfast: { stale: true } } } })
    // Before: holdfast_relay_upstream_state{state="ok"} 1 and holdfast_relay_stale 0 for good.
    const metrics = () => fetch(`${server.url}/metrics`).then((response) => response.text())
    await waitFor(async () => (await metrics()).includes('holdfast_relay_breaker_open 1'), 3000)
    const text = await metrics()
    expect(text).toContain('holdfast_relay_upstream_state{state="failing"} 1')
    expect(text).toContain('holdfast_relay_stale 1')
  })

  it('a context the upstream fails alone: the canary is answered, so it stays ok and closed, with at most one canary a second however often its user asks', async () => {
    const upstream = await startUpstream(crashesFor())
    const { source, clock, ask } = await openSource(upstream.url)
    try {
      expect((await ask('u0')).status).toBe(200)
      const before = upstream.requests.length
      // Its user retries every 100 ms for 3 s of the relay's clock.
      for (let i = 0; i < 30; i++) {
        clock.at += 100
        expect((await ask('crash')).status).toBe(503)
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
      await waitFor(() => upstream.requests.length - before >= 33, 2000).catch(() => undefined)
      const canaries = upstream.requests.slice(before).filter((request) => request.body.includes('"u0"')).length
      expect(canaries).toBeGreaterThanOrEqual(1)
      expect(canaries).toBeLessThanOrEqual(4)
      expect(source.relayStatus()).toMatchObject({ stale: false, upstream: { state: 'ok', breaker: { state: 'closed' } } })
      expect(await ask('u0')).toMatchObject({ status: 200, body: { metadata: { holdfast: { stale: false } } } })
    } finally {
      await source.close()
    }
  })

  it('after a restart, an outage met by a returning user and a new one (the probe answered by a cache): the canary fails, and the status says failing with the breaker open, not ok', async () => {
    const dir = await tempDir()
    let outage = false
    // A cache in front of the broken flag service answers the relay's own probe context.
    const upstream = await startUpstream((request) => (!outage || request.body.includes('holdfast-relay-probe') ? answers('v1') : request.body.includes('"u0"') ? { delayMs: 200, then: down } : down))
    const first = await openSource(upstream.url, { store: createGenerationStore({ dir }) })
    expect((await first.ask('u0')).status).toBe(200)
    await first.source.close()
    outage = true
    const { source, ask } = await openSource(upstream.url, { store: createGenerationStore({ dir }) })
    try {
      expect(source.relayStatus().contexts).toBe(1)
      // u0 (held from the data dir) and a new user at once: the new user's 500 comes first, and its
      // canary is u0's request, which fails too.
      const [returning, stranger] = await Promise.all([ask('u0'), ask('n1')])
      expect(returning).toMatchObject({ status: 200, body: { metadata: { holdfast: { stale: true } } } })
      expect(stranger.status).toBe(503)
      const status = source.relayStatus()
      expect(status.upstream.breaker).toMatchObject({ state: 'open' })
      // Before: the breaker open while the state said `ok` (both failures taken for their own).
      expect(status).toMatchObject({ stale: true, upstream: { state: 'failing' } })
    } finally {
      await source.close()
    }
  })

  it('a canary that fails after another context was answered meanwhile proves nothing: ok and closed', async () => {
    let canaryFails = false
    const upstream = await startUpstream((request) => (request.body.includes('"crash"') ? down : canaryFails && request.body.includes('"u0"') ? { delayMs: 300, then: down } : answers('v1')))
    const { source, clock, ask } = await openSource(upstream.url)
    try {
      expect((await ask('u0')).status).toBe(200)
      canaryFails = true
      clock.at += 100
      expect((await ask('crash')).status).toBe(503)
      // While the canary (u0's context) is out, another user is answered with values.
      expect((await ask('u1')).status).toBe(200)
      await waitFor(() => source.relayStatus().upstream.lastError?.message.includes('500') === true && upstream.requests.filter((request) => request.body.includes('"u0"')).length === 2, 2000)
      await new Promise((resolve) => setTimeout(resolve, 400))
      expect(source.relayStatus()).toMatchObject({ stale: false, upstream: { state: 'ok', breaker: { state: 'closed' } } })
    } finally {
      await source.close()
    }
  })

  it("a canary asks with its own context's forwarded credentials, never the failing user's, and its answer stays its own context's", async () => {
    const upstream = await startUpstream(crashesFor())
    const { source, clock } = await openSource(upstream.url)
    const ask = (targetingKey: string, tenant: string) => source.evaluate!({ context: { targetingKey }, headers: { authorization: `Bearer ${tenant}` } })
    try {
      expect((await ask('u0', 'tenant-a')).status).toBe(200)
      // Past the 5 s within which another key's 5xx is that key's own (no canary needed then).
      clock.at += 6_000
      const before = upstream.requests.length
      expect((await ask('crash', 'tenant-b')).status).toBe(503)
      await waitFor(() => upstream.requests.length - before >= 2, 2000)
      const canary = upstream.requests.slice(before).find((request) => request.body.includes('"u0"'))!
      expect(canary.headers.authorization).toBe('Bearer tenant-a')
      expect(upstream.requests.slice(before).filter((request) => request.headers.authorization === 'Bearer tenant-b').every((request) => request.body.includes('"crash"'))).toBe(true)
      // Each context's values are its own: u0 under tenant-a, nothing for tenant-b's u0.
      expect(await ask('u0', 'tenant-a')).toMatchObject({ status: 200, body: { flags: [{ value: 'v1 u0' }] } })
      expect(source.relayStatus()).toMatchObject({ contexts: 1, upstream: { state: 'ok' } })
    } finally {
      await source.close()
    }
  })

  it("a canary's fresh answer is saved to the data dir like any other: after a restart into an outage its context is served the canary's values", async () => {
    const dir = await tempDir()
    let version = 'v1'
    const upstream = await startUpstream(crashesFor(() => answers(version)))
    const first = await openSource(upstream.url, { store: createGenerationStore({ dir }) })
    expect((await first.ask('u0')).status).toBe(200)
    version = 'v2'
    const before = upstream.requests.length
    expect((await first.ask('crash')).status).toBe(503)
    await waitFor(() => upstream.requests.slice(before).some((request) => request.body.includes('"u0"')), 2000)
    await new Promise((resolve) => setTimeout(resolve, 50))
    await first.source.close()
    upstream.set(down)
    const { source, ask } = await openSource(upstream.url, { store: createGenerationStore({ dir }) })
    try {
      expect(await ask('u0')).toMatchObject({ status: 200, body: { flags: [{ value: 'v2 u0' }], metadata: { holdfast: { stale: true } } } })
    } finally {
      await source.close()
    }
  })

  it('a clock set back hours while a crashing user retries: one canary more at the step, then one a second again', async () => {
    const upstream = await startUpstream(crashesFor())
    const { source, clock, ask } = await openSource(upstream.url)
    try {
      expect((await ask('u0')).status).toBe(200)
      const before = upstream.requests.length
      // 3 s of the relay's clock, a retry every 100 ms, NTP stepping the clock back 3 h halfway.
      for (let i = 0; i < 30; i++) {
        clock.at += i === 15 ? -3 * 3_600_000 : 100
        expect((await ask('crash')).status).toBe(503)
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
      const canaries = upstream.requests.slice(before).filter((request) => request.body.includes('"u0"')).length
      // One a second over 3 s (up to 4 with the edges), and one at the step back.
      expect(canaries).toBeGreaterThanOrEqual(2)
      expect(canaries).toBeLessThanOrEqual(5)
      expect(source.relayStatus()).toMatchObject({ upstream: { state: 'ok', breaker: { state: 'closed' } } })
    } finally {
      await source.close()
    }
  })

  it('a canary the upstream never answers: one out at a time however long its crashing user retries, and close() aborts it at once rather than waiting out its timeout', async () => {
    const upstream = await startUpstream(answers('v1'))
    const { source, clock, ask } = await openSource(upstream.url, { timeoutMs: 5000 })
    expect((await ask('u0')).status).toBe(200)
    upstream.set((request) => (request.body.includes('"crash"') ? down : 'hang'))
    const before = upstream.requests.length
    for (let i = 0; i < 30; i++) {
      clock.at += 200
      expect((await ask('crash')).status).toBe(503)
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    // 6 s of the relay's clock, the canary (u0's context) still out: no second one.
    expect(upstream.requests.slice(before).filter((request) => request.body.includes('"u0"'))).toHaveLength(1)
    expect((await timed(() => source.close())).ms).toBeLessThan(1000)
    const after = upstream.requests.length
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(upstream.requests.length).toBe(after)
  })

  it('a canary that finds a flag drawn anew at each evaluation makes no notice a second: a second change is news with the next round, as a user\'s request finds it', async () => {
    // A nonce flag: every answer differs. One user's context crashes and its user retries; the
    // other user's tab refetches at each notice, as the client does.
    let drawn = 0
    const upstream = await startUpstream(crashesFor({ ofrep: () => ({ flags: [{ key: 'nonce', value: `n${++drawn}`, reason: 'STATIC' }] }) }))
    const { source, clock, ask } = await openSource(upstream.url)
    let notices = 0
    source.onReaskNews!(() => notices++)
    try {
      expect((await ask('u0')).status).toBe(200)
      for (let i = 0; i < 5; i++) {
        clock.at += 1100
        const before = upstream.requests.length
        expect((await ask('crash')).status).toBe(503)
        // The canary (u0's context) lands.
        await waitFor(() => upstream.requests.slice(before).some((request) => request.body.includes('"u0"')), 2000)
        await new Promise((resolve) => setTimeout(resolve, 20))
        // u0's tab refetches (at a notice, or by itself).
        expect((await ask('u0')).status).toBe(200)
      }
      // Before: a notice to every open tab at each canary (5 here), once a second for as long as
      // the crashing user retried. The first change found is news, as a user's request finding it.
      expect(notices).toBeLessThanOrEqual(1)
    } finally {
      await source.close()
    }
  })

  it('after the clock is set back hours, the status says the next probe is due now, as it is, not hours ahead', async () => {
    const upstream = await startUpstream(answers('v1'))
    const { source, clock, ask } = await openSource(upstream.url)
    try {
      for (const user of ['u0', 'u1']) expect((await ask(user)).status).toBe(200)
      upstream.set(down)
      for (const user of ['u0', 'u1']) await ask(user)
      expect(source.relayStatus().upstream.breaker).toMatchObject({ state: 'open' })
      // NTP steps the clock back three hours.
      clock.at -= 3 * 3_600_000
      // Before: nextProbeAt three hours ahead, while the next request goes upstream as the probe at once.
      expect(source.relayStatus().upstream.breaker!.nextProbeAt).toBeLessThanOrEqual(clock.at)
      const before = upstream.requests.length
      await ask('u0')
      expect(upstream.requests.length - before).toBe(1)
    } finally {
      await source.close()
    }
  })

  it('two contexts the upstream always answers 500, sent together every half second, do not open it while it answers the users; with nobody answered for 5 s they do', async () => {
    const upstream = await startUpstream((request) => (request.body.includes('"evil') ? down : answers('v1')))
    const { source, clock, ask } = await openSource(upstream.url)
    try {
      for (let i = 0; i < 20; i++) {
        clock.at += 500
        expect((await Promise.all([ask('evil-a'), ask('evil-b')])).map((answer) => answer.status)).toEqual([503, 503])
        // Before: open from the first pair on; every new user got 503 and every held one stale values.
        expect(await ask(`u${i}`)).toMatchObject({ status: 200, body: { flags: [{ value: `v1 u${i}` }], metadata: { holdfast: { stale: false } } } })
        expect(await ask('u0')).toMatchObject({ status: 200, body: { metadata: { holdfast: { stale: false } } } })
      }
      expect(source.relayStatus().upstream.breaker).toMatchObject({ state: 'closed' })
      // Nobody else asks for 5 s: as good as an outage (a cold start against a 500 spell opens it so).
      clock.at += 5_000
      await Promise.all([ask('evil-a'), ask('evil-b')])
      expect(source.relayStatus().upstream.breaker).toMatchObject({ state: 'open' })
    } finally {
      await source.close()
    }
  })

  // An ingress whose backend is gone answers 404 to everything; a flag service whose store is down
  // may answer every user with zero flags (refused: CONTRACT §2.1, an outage that answers `{}`).
  it.each([
    ['404 (an ingress whose backend is gone)', { status: 404, text: 'default backend - 404' }],
    ['with zero flags (refused)', { status: 200, json: { flags: [] } }],
  ] as Array<[string, Behaviour]>)('a probe answered %s does not close it: the upstream still gives no values', async (_, still) => {
    const upstream = await startUpstream(answers('v1'))
    const { source, clock, ask } = await openSource(upstream.url)
    try {
      const users = ['u0', 'u1', 'u2', 'u3']
      for (const user of users) expect((await ask(user)).status).toBe(200)
      upstream.set(down)
      for (const user of users) await ask(user)
      expect(source.relayStatus().upstream.breaker).toMatchObject({ state: 'open' })
      upstream.set(still)
      clock.at += 31_000
      const before = upstream.requests.length
      for (let i = 0; i < 40; i++) {
        clock.at += 50
        expect(await ask(users[i % 4])).toMatchObject({ status: 200, body: { flags: [{ value: `v1 ${users[i % 4]}` }], metadata: { holdfast: { stale: true } } } })
      }
      // Before: the probe's answer closed it, and every request after went upstream (40).
      expect(upstream.requests.length - before).toBeLessThanOrEqual(2)
      expect(source.relayStatus().upstream).toMatchObject({ state: 'failing', breaker: { state: 'open' } })
    } finally {
      await source.close()
    }
  })

  it('a probe the upstream blames (400 for a bad context, 401 for a made-up key: a gateway still up in front of a dead service) does not close it', async () => {
    const upstream = await startUpstream(answers('v1'))
    const { source, clock } = await openSource(upstream.url)
    try {
      const ask = (targetingKey: string, headers: Record<string, string> = {}) => source.evaluate!({ context: { targetingKey }, headers })
      const users = ['u0', 'u1', 'u2', 'u3']
      for (const user of users) expect((await ask(user)).status).toBe(200)
      // The gateway checks keys and contexts; the flag service behind it is down.
      upstream.set((request) =>
        request.headers.authorization === 'Bearer made-up' ? { status: 401, text: 'Unauthorized' } : request.body.includes('"bad"') ? { status: 400, json: { errorCode: 'INVALID_CONTEXT' } } : down,
      )
      for (const user of users) await ask(user)
      expect(source.relayStatus().upstream.breaker).toMatchObject({ state: 'open' })
      const before = upstream.requests.length
      // Over 20 s, a client with a bad context or a made-up key asks every second, before the users.
      for (let i = 0; i < 20; i++) {
        clock.at += 1100
        await (i % 2 === 0 ? ask('bad') : ask('x', { authorization: 'Bearer made-up' }))
        for (const user of users) expect(await ask(user)).toMatchObject({ status: 200, body: { flags: [{ value: `v1 ${user}` }], metadata: { holdfast: { stale: true } } } })
      }
      // Before: each such request closed it, and the users' next requests went upstream (60 in all).
      expect(upstream.requests.length - before).toBeLessThanOrEqual(6)
      expect(source.relayStatus().upstream.breaker).toMatchObject({ state: 'open' })
      // Values close it.
      upstream.set(answers('v2'))
      clock.at += 31_000
      expect(await ask('u1')).toMatchObject({ status: 200, body: { flags: [{ value: 'v2 u1' }], metadata: { holdfast: { stale: false } } } })
      expect(source.relayStatus().upstream.breaker).toMatchObject({ state: 'closed' })
    } finally {
      await source.close()
    }
  })

  it('a client provoking a 400 or a 401 between the users\' requests (anyone can) does not keep it from opening while the upstream answers them 500', async () => {
    const upstream = await startUpstream(answers('v1'))
    const { source, clock } = await openSource(upstream.url)
    try {
      const ask = (targetingKey: string, headers: Record<string, string> = {}) => source.evaluate!({ context: { targetingKey }, headers })
      const users = ['u0', 'u1', 'u2', 'u3']
      for (const user of users) expect((await ask(user)).status).toBe(200)
      // The gateway checks keys and contexts; the flag service behind it is down.
      upstream.set((request) =>
        request.headers.authorization === 'Bearer made-up' ? { status: 401, text: 'Unauthorized' } : request.body.includes('"bad"') ? { status: 400, json: { errorCode: 'INVALID_CONTEXT' } } : down,
      )
      const before = upstream.requests.length
      // 40 users' requests over 4 s, each after one of the attacker's.
      for (let i = 0; i < 40; i++) {
        clock.at += 100
        await (i % 2 === 0 ? ask('bad') : ask('x', { authorization: 'Bearer made-up' }))
        const user = users[i % 4]
        expect(await ask(user)).toMatchObject({ status: 200, body: { flags: [{ value: `v1 ${user}` }], metadata: { holdfast: { stale: true } } } })
      }
      // Before: each of its requests started the count again: the breaker never opened, and every
      // user's request went upstream (40, beside the attacker's 40).
      expect(source.relayStatus().upstream.breaker).toMatchObject({ state: 'open' })
      const usersAsked = upstream.requests.slice(before).filter((request) => /"u\d"/.test(request.body)).length
      expect(usersAsked).toBeLessThanOrEqual(6)
    } finally {
      await source.close()
    }
  })

  it('a client provoking 400s with made-up keys does not make the users\' 500s one key\'s own: it still opens, and the status says failing', async () => {
    const upstream = await startUpstream(answers('v1'))
    const { source, clock } = await openSource(upstream.url)
    try {
      const ask = (targetingKey: string, headers: Record<string, string> = {}) => source.evaluate!({ context: { targetingKey }, headers })
      const users = ['u0', 'u1', 'u2', 'u3']
      for (const user of users) expect((await ask(user, { authorization: 'Bearer sdk' })).status).toBe(200)
      // The gateway still answers 400 for a bad context, whatever the key; the flag service is down.
      upstream.set((request) => (request.body.includes('"bad"') ? { status: 400, json: { errorCode: 'INVALID_CONTEXT' } } : down))
      const before = upstream.requests.length
      for (let i = 0; i < 40; i++) {
        clock.at += 100
        // A 400 is no answer with values: the key it came with was not "answered" (see ownOutage).
        await ask('bad', { authorization: `Bearer made-up-${i}` })
        await ask(users[i % 4], { authorization: 'Bearer sdk' })
      }
      expect(source.relayStatus().upstream).toMatchObject({ state: 'failing', breaker: { state: 'open' } })
      expect(upstream.requests.slice(before).filter((request) => /"u\d"/.test(request.body)).length).toBeLessThanOrEqual(6)
    } finally {
      await source.close()
    }
  })

  it('while it is open, a probe the upstream answers 400 (a bad context) does not make the status say the upstream is ok and nothing is stale', async () => {
    const upstream = await startUpstream(answers('v1'))
    const { source, clock, ask } = await openSource(upstream.url)
    try {
      for (const user of ['u0', 'u1']) expect((await ask(user)).status).toBe(200)
      // The gateway checks contexts; the flag service behind it is down.
      upstream.set((request) => (request.body.includes('"bad"') ? { status: 400, json: { errorCode: 'INVALID_CONTEXT' } } : down))
      clock.at += 10_000
      for (const user of ['u0', 'u1']) await ask(user)
      expect(source.relayStatus()).toMatchObject({ stale: true, upstream: { state: 'failing', breaker: { state: 'open' } } })
      const lastSuccessAt = source.relayStatus().upstream.lastSuccessAt
      // A client with a bad context is the next probe (due 0.8 to 1.2 s after it opened): its 400 passes on.
      clock.at += 1300
      expect((await ask('bad')).status).toBe(400)
      // Every user is still answered stale, without asking; a new one gets 503.
      expect(await ask('u0')).toMatchObject({ status: 200, body: { metadata: { holdfast: { stale: true } } } })
      expect((await ask('stranger')).status).toBe(503)
      // Before: `upstream.state: 'ok'`, `stale: false` (holdfast_relay_stale 0) and a new lastSuccessAt.
      expect(source.relayStatus()).toMatchObject({ stale: true, upstream: { state: 'failing', lastSuccessAt, breaker: { state: 'open' } } })
    } finally {
      await source.close()
    }
  })

  it('after a made-up key\'s 401 while it is open, a new user with a good key still gets the --snapshot, and the status still says failing (the 401 is not why it is open)', async () => {
    const upstream = await startUpstream(answers('v1'))
    const snapshotPath = join(await tempDir(), 'snap.json')
    // Made with the good key (`holdfast-server snapshot --header`): a values snapshot stands in only
    // for the credentials it was made with (relay-snapshot-credentials.test.ts). Written as a plain
    // Bootstrap, it went to no key at all once that rule came, and this test failed for that reason,
    // not for the one it guards.
    const holdfastCredentials = recordCredentials({ Authorization: 'Bearer good' })
    await writeFile(snapshotPath, JSON.stringify({ context: { targetingKey: 'anonymous' }, flags: [{ key: 'banner', value: 'snapshot', reason: 'STATIC' }], fetchedAt: 1_700_000_000_000, holdfastCredentials }))
    const { source, clock } = await openSource(upstream.url, { snapshotPath, onUnauthorized: { mode: 'clear' } })
    try {
      const good = { authorization: 'Bearer good' }
      const ask = (targetingKey: string, headers: Record<string, string> = good) => source.evaluate!({ context: { targetingKey }, headers })
      for (const user of ['u0', 'u1']) expect((await ask(user)).status).toBe(200)
      upstream.set((request) => (request.headers.authorization === 'Bearer made-up' ? { status: 401, text: 'Unauthorized' } : down))
      clock.at += 61_000
      for (const user of ['u0', 'u1']) await ask(user)
      expect(source.relayStatus().upstream.breaker).toMatchObject({ state: 'open' })
      clock.at += 1300 // the probe is due (0.8 to 1.2 s after it opened)
      expect((await ask('x', { authorization: 'Bearer made-up' })).status).toBe(503)
      expect(await ask('anonymous')).toMatchObject({ status: 200, body: { flags: [{ key: 'banner', value: 'snapshot' }] } })
      // Nor does it make the upstream `unauthorized` (before: an attacker's made-up key flipped the
      // operator's view of an outage), nor clear the good key's users under `clear`.
      expect(source.relayStatus()).toMatchObject({ stale: true, upstream: { state: 'failing', breaker: { state: 'open' } }, refusedBy: { unauthorized: 1 } })
      for (const user of ['u0', 'u1']) expect(await ask(user)).toMatchObject({ status: 200, body: { flags: [{ value: `v1 ${user}` }], metadata: { holdfast: { stale: true } } } })
    } finally {
      await source.close()
    }
  })

  it('one key rate limited (429) while the upstream answers another never opens it for every key', async () => {
    const upstream = await startUpstream((request) => (request.headers.authorization === 'Bearer busy' ? { status: 429, text: 'Too Many Requests' } : answers('v1')))
    const { source, clock } = await openSource(upstream.url)
    try {
      const ask = (targetingKey: string, key: string) => source.evaluate!({ context: { targetingKey }, headers: { authorization: `Bearer ${key}` } })
      expect((await ask('q0', 'quiet')).status).toBe(200)
      // One tenant's key is over its rate limit; the other tenant's new users keep coming.
      for (let i = 0; i < 10; i++) {
        clock.at += 100
        // (The busy tenant has more users: two of its requests in a row.)
        for (const user of [`b${i}`, `c${i}`]) expect((await ask(user, 'busy')).status).toBe(503)
        // Before: 503 without asking from the second 429 on (the breaker open for every key).
        expect(await ask(`q${i + 1}`, 'quiet')).toMatchObject({ status: 200, body: { flags: [{ value: `v1 q${i + 1}` }], metadata: { holdfast: { stale: false } } } })
      }
      expect(source.relayStatus().upstream.breaker).toMatchObject({ state: 'closed' })
    } finally {
      await source.close()
    }
  })

  it('after the clock is set back an hour, one key rate limited (429) a second after another was accepted still never opens it for every key', async () => {
    const upstream = await startUpstream((request) => (request.headers.authorization === 'Bearer busy' ? { status: 429, text: 'Too Many Requests' } : answers('v1')))
    const opened = await openSource(upstream.url)
    try {
      expect((await tenantAsk(opened.source)('q0', 'quiet')).status).toBe(200)
      // A second later NTP steps the relay's clock back an hour; a burst of the busy tenant's users.
      // Before: the quiet key's acceptance a second ago looked an hour ahead (no "within the minute").
      opened.clock.at += 1000 - 3_600_000
      await burstStaysOwn(opened, ['b0', 'b1'])
    } finally {
      await opened.source.close()
    }
  })

  it('one key going over its rate limit (429) right after its own request was accepted never opens it for every key', async () => {
    let busyAnswered = 0
    const upstream = await startUpstream((request) =>
      request.headers.authorization === 'Bearer busy' && busyAnswered++ > 0 ? { status: 429, text: 'Too Many Requests', headers: { 'Retry-After': '2' } } : answers('v1'),
    )
    const opened = await openSource(upstream.url)
    try {
      const ask = tenantAsk(opened.source)
      expect((await ask('q0', 'quiet')).status).toBe(200)
      opened.clock.at += 5_000
      // The busy tenant's request is the one the upstream accepted last; then a burst of its users
      // goes over its quota (two requests out at once, both answered 429).
      expect((await ask('b0', 'busy')).status).toBe(200)
      opened.clock.at += 100
      await burstStaysOwn(opened, ['b1', 'b2'])
    } finally {
      await opened.source.close()
    }
  })

  it('one key the upstream answers 500 (its project broken at the vendor) while it answers another never opens it for every key; an outage of every key still does', async () => {
    let broken = false
    let everyone = false
    const upstream = await startUpstream((request) => (everyone || (broken && request.headers.authorization === 'Bearer broken') ? down : answers('v1')))
    const { source, clock } = await openSource(upstream.url)
    try {
      const ask = tenantAsk(source)
      // Both tenants' users are held (so none of this is the `unknown` rule's made-up contexts).
      for (const [user, key] of [['q0', 'quiet'], ['b0', 'broken'], ['b1', 'broken']]) expect((await ask(user, key)).status).toBe(200)
      broken = true
      for (let i = 0; i < 10; i++) {
        clock.at += 100
        // The broken tenant's users get what is held for them, stale.
        for (const user of ['b0', 'b1']) expect(await ask(user, 'broken')).toMatchObject({ status: 200, body: { flags: [{ value: `v1 ${user}` }], metadata: { holdfast: { stale: true } } } })
        // Before: the quiet tenant's new user got 503 without asking, its held user a stale answer (the breaker open for every key).
        expect(await ask(`q${i + 1}`, 'quiet')).toMatchObject({ status: 200, body: { flags: [{ value: `v1 q${i + 1}` }], metadata: { holdfast: { stale: false } } } })
        expect(await ask('q0', 'quiet')).toMatchObject({ status: 200, body: { metadata: { holdfast: { stale: false } } } })
      }
      const status = source.relayStatus()
      expect(status.upstream.breaker).toMatchObject({ state: 'closed' })
      // Not silent: the broken key's failures are counted, and the upstream (answering the others) is ok.
      expect(status.upstream.state).toBe('ok')
      expect(status.refusedBy!.http).toBeGreaterThanOrEqual(20)
      // Every key failing: once nobody was answered for 5 s, two failures open it, as before.
      everyone = true
      const requestsBefore = upstream.requests.length
      for (let i = 0; i < 80 && source.relayStatus().upstream.breaker!.state === 'closed'; i++) {
        clock.at += 100
        await ask(`q${i % 3}`, 'quiet')
        await ask(`b${i % 2}`, 'broken')
      }
      expect(source.relayStatus().upstream).toMatchObject({ state: 'failing', breaker: { state: 'open' } })
      expect(upstream.requests.length - requestsBefore).toBeLessThanOrEqual(2 * 52)
    } finally {
      await source.close()
    }
  })

  it('the status and /metrics say it is open and count the requests answered without asking; a refresh still asks now', async () => {
    const upstream = await startUpstream(answers('v1'))
    const server: FlagServer = await startServer({ flags: undefined, upstream: upstream.url, upstreamTimeoutMs: 2000, adminKey: 'admin-key', logger: recordingLogger() })
    const ask = (targetingKey: string) => fetch(`${server.url}/ofrep/v1/evaluate/flags`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ context: { targetingKey } }) })
    for (const user of ['a', 'b', 'c']) expect((await ask(user)).status).toBe(200)
    upstream.set(down)
    for (const user of ['a', 'b', 'c', 'a', 'b', 'c']) expect((await ask(user)).status).toBe(200)
    const { value: stranger, ms } = await timed(() => ask('stranger'))
    expect(stranger.status).toBe(503)
    expect(stranger.headers.get('retry-after')).toMatch(/^[1-9]\d*$/)
    expect(ms).toBeLessThan(500)
    const status = (await (await fetch(`${server.url}/holdfast/v1/status`)).json()) as any
    expect(status.upstream.breaker).toMatchObject({ state: 'open' })
    expect(status.upstream.breaker.unasked).toBeGreaterThanOrEqual(4)
    const metrics = await (await fetch(`${server.url}/metrics`)).text()
    expect(metrics).toContain('holdfast_relay_breaker_open 1')
    expect(metrics).toMatch(/holdfast_relay_unasked_total\{reason="breaker"\} ([4-9]|\d\d)/)
    // An operator's refresh asks now, breaker or not, and its success closes it.
    upstream.set(answers('v2'))
    const asked = upstream.requests.length
    const refresh = await fetch(`${server.url}/holdfast/v1/refresh`, { method: 'POST', headers: { Authorization: 'Bearer admin-key' } })
    expect(refresh.status).toBe(200)
    expect(upstream.requests.length).toBeGreaterThan(asked)
    expect(((await (await fetch(`${server.url}/holdfast/v1/status`)).json()) as any).upstream.breaker).toMatchObject({ state: 'closed' })
    expect(await (await fetch(`${server.url}/metrics`)).text()).toContain('holdfast_relay_breaker_open 0')
    expect(((await (await ask('b')).json()) as any).flags[0].value).toBe('v2 b')
  })
})

describe('proxy mode: the breaker against an upstream that hangs', () => {
  it('once two requests have timed out, a new user gets 503 at once and held users their values, with no request each left hanging upstream', async () => {
    const upstream = await startUpstream(answers('v1'))
    const { source, clock, ask } = await openSource(upstream.url, { timeoutMs: 300 })
    try {
      for (const user of ['a', 'b']) expect((await ask(user)).status).toBe(200)
      upstream.set('hang')
      const before = upstream.requests.length
      // Two users' requests time out: it opens (each got its held values, stale).
      for (const user of ['a', 'b']) expect(await ask(user)).toMatchObject({ status: 200, body: { metadata: { holdfast: { stale: true } } } })
      await new Promise((resolve) => setTimeout(resolve, 400)) // the two upstream requests give up (300 ms)
      expect(source.relayStatus().upstream.breaker).toMatchObject({ state: 'open' })
      for (let i = 0; i < 20; i++) {
        clock.at += 10
        const { value: answer, ms } = await timed(() => ask(i % 2 === 0 ? `new-${i}` : 'a'))
        expect(answer.status).toBe(i % 2 === 0 ? 503 : 200)
        // Before: each waited the held-answer wait (300 ms here, 1 s by default) on a request of its own.
        expect(ms).toBeLessThan(250)
      }
      expect(upstream.requests.length - before).toBe(2)
    } finally {
      await source.close()
    }
  })
})

describe('proxy mode: a probe that hangs', () => {
  it('settles at the upstream timeout, its caller long gone with the held answer: the next probe goes when due, and the first that is answered closes it', async () => {
    const upstream = await startUpstream(answers('v1'))
    // The held-answer wait is the default (1 s), not 50 ms: the answers the case needs on time (the
    // probe's v2) come from 127.0.0.1, and under load one took longer than 50 ms (its caller got the
    // held v1). The upstream timeout outlasts it, so the hanging probe's caller still leaves first.
    const { source, clock, ask } = await openSource(upstream.url, { timeoutMs: 2500, heldAnswerAfterMs: 1000 })
    try {
      for (const user of ['a', 'b']) expect((await ask(user)).status).toBe(200)
      upstream.set(down)
      for (const user of ['a', 'b']) await ask(user)
      // The two 500s open it once they are in: a caller may have left with the held answer first
      // (read 'closed' here under load, the 500s not in yet).
      await waitFor(() => source.relayStatus().upstream.breaker!.state === 'open', 10_000)
      upstream.set('hang')
      clock.at += 31_000
      // The probe: its caller gets the held answer after 1 s; the request hangs on upstream.
      expect(await ask('a')).toMatchObject({ status: 200, body: { metadata: { holdfast: { stale: true } } } })
      expect(source.relayStatus().upstream.breaker).toMatchObject({ state: 'open', probing: true, probes: 1 })
      // It settles at the upstream timeout (2.5 s), whatever its caller did.
      await waitFor(() => source.relayStatus().upstream.breaker!.probing === false, 10_000)
      upstream.set(answers('v2'))
      clock.at += 31_000
      expect(await ask('b')).toMatchObject({ status: 200, body: { flags: [{ value: 'v2 b' }], metadata: { holdfast: { stale: false } } } })
      expect(source.relayStatus().upstream.breaker).toMatchObject({ state: 'closed' })
    } finally {
      await source.close()
    }
  })
})

describe('proxy mode with --redis: each relay holds its own breaker', () => {
  const { redisServer } = useRedisFleet()

  it('both absorb the outage; one that found the upstream back shares its answers, and the other probes at once, its users not served that answer as stale for up to 5 s', async () => {
    const redis = await redisServer()
    const upstream = await startUpstream(answers('v1'))
    const clocks = [1_800_000_000_000, 1_800_000_000_000]
    const relays = clocks.map((_, i) =>
      createUpstreamSource({
        url: upstream.url,
        maxShrinkPercent: 50,
        onUnauthorized: { mode: 'keep' },
        timeoutMs: 2000,
        log: recordingLogger(),
        now: () => clocks[i],
        share: (take, held) => createSharedContexts({ store: createRedisStore({ url: redis.url, namespace: 'breaker', commandTimeoutMs: 300 }), take, held }),
      }),
    )
    await Promise.all(relays.map((relay) => relay.open()))
    try {
      const ask = (i: number, targetingKey: string) => relays[i].evaluate!({ context: { targetingKey }, headers: {} })
      const users = ['u0', 'u1', 'u2', 'u3']
      for (const user of users) for (const i of [0, 1]) expect((await ask(i, user)).status).toBe(200)
      upstream.set(down)
      const before = upstream.requests.length
      for (let round = 0; round < 5; round++) {
        for (const i of [0, 1]) {
          clocks[i] += 10
          for (const user of users) expect(await ask(i, user)).toMatchObject({ status: 200, body: { flags: [{ value: `v1 ${user}` }] } })
        }
      }
      // 40 browser requests: two upstream requests open each relay's breaker (the first user's and
      // its canary, or the next user's when that came first, the canary still out).
      expect(upstream.requests.length - before).toBeGreaterThanOrEqual(4)
      expect(upstream.requests.length - before).toBeLessThanOrEqual(6)
      for (const relay of relays) expect(relay.relayStatus().upstream.breaker).toMatchObject({ state: 'open' })
      // The other relay has probed a while: its next probe is up to 5 s away.
      for (let i = 0; i < 6; i++) {
        clocks[1] += 31_000
        expect((await ask(1, 'u0')).status).toBe(200)
      }
      expect(relays[1].relayStatus().upstream.breaker).toMatchObject({ state: 'open', probes: 6 })
      upstream.set(answers('v2'))
      clocks[0] += 31_000
      expect(await ask(0, 'u1')).toMatchObject({ status: 200, body: { flags: [{ value: 'v2 u1' }], metadata: { holdfast: { stale: false } } } })
      expect(relays[0].relayStatus().upstream.breaker).toMatchObject({ state: 'closed' })
      // The other relay takes that answer through Redis: the upstream answers. Before, its users got
      // even that answer marked stale (UPSTREAM_STALE in every browser) until its own probe was due,
      // up to 5 s on; now its next request goes upstream as the probe, and finds it back.
      clocks[1] += 2_000
      const asked = upstream.requests.length
      await waitFor(async () => {
        const body = (await ask(1, 'u1')).body as any
        return body.flags[0].value === 'v2 u1' && body.metadata.holdfast.stale === false
      }, 5000)
      expect(upstream.requests.length - asked).toBe(1)
      expect(relays[1].relayStatus().upstream.breaker).toMatchObject({ state: 'closed' })
      expect(await ask(1, 'u2')).toMatchObject({ status: 200, body: { flags: [{ value: 'v2 u2' }], metadata: { holdfast: { stale: false } } } })
    } finally {
      await Promise.all(relays.map((relay) => relay.close()))
    }
  })

  it('after a restart from the data dir, contexts read back from disk count as given values here: two of them failing open it at once, though the upstream just answered the start probe (pinned: found fine)', async () => {
    const dataDir = await tempDir()
    let outage = false
    // In the outage the upstream answers only the relay's own probe (what a cache in front of a
    // broken flag service can do): a "never given values" rule that took disk contexts for new ones
    // would wait 5 s after that answer before opening.
    const upstream = await startUpstream((request) => (outage && !request.body.includes('holdfast-relay-probe') ? down : answers('v1')))
    const first = await startServer({ flags: undefined, upstream: upstream.url, dataDir })
    for (const user of ['u1', 'u2']) expect((await first.handler.source.evaluate!({ context: { targetingKey: user }, headers: {} })).status).toBe(200)
    await first.close()
    outage = true
    const again = await startServer({ flags: undefined, upstream: upstream.url, dataDir })
    for (const user of ['u1', 'u2']) expect(await again.handler.source.evaluate!({ context: { targetingKey: user }, headers: {} })).toMatchObject({ status: 200, body: { metadata: { holdfast: { stale: true } } } })
    expect((await (await fetch(`${again.url}/holdfast/v1/status`)).json()).upstream.breaker.state).toBe('open')
  })
})
