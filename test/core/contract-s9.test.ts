// CONTRACT §9 as a browser sees it through a real relay (`createFlagServer({ upstream })`) on
// 127.0.0.1, in front of a scripted upstream: what the relay keeps for a context reaches the page
// with the same honesty as when the page talks to the upstream itself (§4: a value kept through a
// per-flag error, or one a partial answer left out, is `stale`).
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { createClient, createMemoryStorage, fetchBootstrap, type FlagClient, type FlagStorage } from '@holdfast/core'
import { createFlagServer, silentLogger, type FlagServer } from '@holdfast/server'
import { createFaultServer, flags, type FaultServer } from '../support/faultServer'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'

let upstream: FaultServer
let relay: FlagServer
const clients: FlagClient[] = []
beforeEach(async () => {
  upstream = await createFaultServer(flags([{ key: 'checkout', value: 'v2', variant: 'new', reason: 'TARGETING_MATCH' }, { key: 'limit', value: 10 }, { key: 'banner', value: true }]))
  relay = await createFlagServer({ upstream: upstream.url, port: 0, logger: silentLogger, maxEventLoopDelayMs: 0, liveUpdates: false })
})
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await relay.close()
  await upstream.close()
})

function make(url: string, storage: FlagStorage | 'memory' = 'memory', storageName = uniqueStorageName('s9')) {
  const client = createClient({ url, context: { targetingKey: 'alice' }, storage, storageName, logger: createTestLogger(), clock: createManualClock() })
  clients.push(client)
  return client
}

describe('a per-flag error behind the relay reaches the page as staleness (§9 proxy mode merges as §4)', () => {
  test('a value the relay kept through an upstream per-flag error, and one a partial answer left out, are stale in the browser, as they are without the relay', async () => {
    const viaRelay = make(relay.url)
    const direct = make(upstream.url)
    await viaRelay.start()
    await direct.start()
    expect(viaRelay.getDetails('checkout', 'v1')).toMatchObject({ value: 'v2', stale: false })

    // The upstream fails to evaluate `checkout` for this user and leaves `banner` out: a partial answer.
    upstream.always(flags([{ key: 'checkout', errorCode: 'GENERAL' }, { key: 'limit', value: 10 }]))
    expect((await direct.refresh()).state).toBe('ready')
    expect((await viaRelay.refresh()).state).toBe('ready')

    // Talking to the upstream itself, the page knows these two values are only kept.
    expect(direct.getDetails('checkout', 'v1')).toMatchObject({ value: 'v2', stale: true, errorCode: 'GENERAL' })
    expect(direct.getDetails('banner', false)).toMatchObject({ value: true, stale: true })
    // Through the relay, the same two values are kept (the relay merged as the client does) and
    // must not pass for fresh: the relay marks them `reason: "STALE"`.
    expect(viaRelay.getDetails('checkout', 'v1')).toMatchObject({ value: 'v2', stale: true })
    expect(viaRelay.getDetails('banner', false)).toMatchObject({ value: true, stale: true })
    expect(viaRelay.getDetails('limit', 0)).toMatchObject({ value: 10, stale: false })
    // Asked again while nothing changed, the relay confirms its answer with 304: still only kept.
    const asked = upstream.requests.length
    expect((await viaRelay.refresh()).state).toBe('ready')
    expect(upstream.requests.length).toBeGreaterThan(asked)
    expect(viaRelay.getDetails('checkout', 'v1')).toMatchObject({ value: 'v2', stale: true })
    expect(viaRelay.getDetails('banner', false)).toMatchObject({ value: true, stale: true })

    // A page rendered now on the server from the relay (fetchBootstrap) shows them stale from its
    // first render, not fresh until the first answer.
    const bootstrap = await fetchBootstrap({ url: relay.url, context: { targetingKey: 'alice' } })
    const rendered = createClient({ url: relay.url, context: { targetingKey: 'alice' }, bootstrap: bootstrap!, storage: 'memory', logger: createTestLogger(), clock: createManualClock() })
    clients.push(rendered)
    expect(rendered.getDetails('checkout', 'v1')).toMatchObject({ value: 'v2', source: 'bootstrap', stale: true })
    expect(rendered.getDetails('limit', 0)).toMatchObject({ value: 10, source: 'bootstrap', stale: false })

    // A server that says STALE itself and confirms its answer with 304: still only kept.
    upstream.always((request) =>
      request.headers['if-none-match'] === '"kept"' ? { status: 304, headers: { ETag: '"kept"' } } : flags([{ key: 'checkout', value: 'v2', reason: 'STALE' }, { key: 'limit', value: 10 }], '"kept"'),
    )
    await direct.refresh()
    expect(upstream.requests.at(-1)!.headers['if-none-match']).not.toBe('"kept"')
    await direct.refresh()
    expect(upstream.requests.at(-1)!.headers['if-none-match']).toBe('"kept"')
    expect(direct.getDetails('checkout', 'v1')).toMatchObject({ value: 'v2', stale: true })
    expect(direct.getDetails('limit', 0)).toMatchObject({ value: 10, stale: false })

    // The upstream evaluates them again: fresh in the browser too.
    upstream.always(flags([{ key: 'checkout', value: 'v2', variant: 'new', reason: 'TARGETING_MATCH' }, { key: 'limit', value: 10 }, { key: 'banner', value: true }]))
    await viaRelay.refresh()
    expect(viaRelay.getDetails('checkout', 'v1')).toMatchObject({ value: 'v2', stale: false, reason: 'TARGETING_MATCH' })
    expect(viaRelay.getDetails('banner', false)).toMatchObject({ value: true, stale: false })
  })
})

describe("a relay's stale answer stays stale when the relay confirms it with 304 (§9: staleness reaches the browser)", () => {
  // Through an upstream outage the relay serves its held answer with `metadata.holdfast.stale: true`
  // and one ETag, and answers that ETag with 304 (the same stale snapshot). A 304 must not turn it
  // into fresh values, however the page came to hold the ETag.
  const fresh = { state: 'ready' }
  const stale = { state: 'stale', error: { code: 'UPSTREAM_STALE' } }

  test('after a reload: the cached ETag of a stale answer, confirmed by 304, is still UPSTREAM_STALE', async () => {
    const storage = createMemoryStorage()
    const storageName = uniqueStorageName('s9-reload')
    const before = make(relay.url, storage, storageName)
    expect(await before.start()).toMatchObject(fresh)
    upstream.always({ status: 503, raw: '' })
    expect(await before.refresh()).toMatchObject(stale)
    await before.close()

    const reloaded = make(relay.url, storage, storageName)
    const status = await reloaded.start()
    expect(upstream.requests.length).toBeGreaterThan(2) // the relay asked its upstream again, and failed
    expect(status).toMatchObject(stale)
    expect(reloaded.getDetails('limit', 0)).toMatchObject({ value: 10, stale: true })
  })

  test('after a failed attempt in between: a 304 to the stale answer still says UPSTREAM_STALE', async () => {
    // The page's network drops one request (a blip between the page and the relay).
    let drop = false
    const flaky: typeof fetch = (input, init) => (drop ? ((drop = false), Promise.reject(new TypeError('Failed to fetch'))) : fetch(input, init))
    const client = createClient({ url: relay.url, context: { targetingKey: 'alice' }, storage: 'memory', fetch: flaky, logger: createTestLogger(), clock: createManualClock() })
    clients.push(client)
    expect(await client.start()).toMatchObject(fresh)
    upstream.always({ status: 503, raw: '' })
    expect(await client.refresh()).toMatchObject(stale)
    drop = true
    expect((await client.refresh()).error?.code).toBe('NETWORK')
    const status = await client.refresh()
    expect(status).toMatchObject(stale)
    expect(client.getDetails('limit', 0)).toMatchObject({ value: 10, stale: true })
  })
})
