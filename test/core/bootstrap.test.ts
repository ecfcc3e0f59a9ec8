// Server-rendered bootstrap and build-time fallback (CONTRACT §5), and fetchBootstrap.
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest'
import { createClient, fetchBootstrap, type Bootstrap, type FlagClient } from '@holdfast/core'
import { createFlagServer } from '@holdfast/server'
import { createFaultServer, flags, type FaultServer } from '../support/faultServer'
import { throughTimeout, createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'

let server: FaultServer
const clients: FlagClient[] = []
beforeEach(async () => {
  server = await createFaultServer(flags([{ key: 'kill', value: true, variant: 'on' }], '"srv"'))
})
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await server.close()
})

function make(options: Partial<Parameters<typeof createClient>[0]> = {}) {
  const logger = createTestLogger()
  const clock = createManualClock()
  const client = createClient({ url: server.url, context: { targetingKey: 'alice' }, storageName: uniqueStorageName('boot'), logger, clock, requestTimeoutMs: 300, ...options })
  clients.push(client)
  // Against a hanging server, start() settles once the first request times out (on the manual clock).
  const startHung = () => throughTimeout(clock, server, 300, () => client.start())
  return { client, logger, startHung }
}

const bootstrap = (over: Partial<Bootstrap> = {}): Bootstrap => ({
  context: { targetingKey: 'alice' },
  flags: [{ key: 'kill', value: false, variant: 'off' }, { key: 'banner', value: { text: 'ssr' } }],
  fetchedAt: Date.now() - 1000,
  ...over,
})

describe('bootstrap', () => {
  test('a property that is undefined (what the type of a JSON import allows) counts as absent, as in JSON: the rest of the value and metadata are kept', () => {
    const snapshot = {
      context: { targetingKey: 'alice' },
      flags: [
        { key: 'banner', value: { text: 'ssr', color: undefined }, metadata: { owner: 'growth', kind: undefined } },
        { key: 'limits', value: { max: 3, text: undefined }, metadata: { owner: undefined, kind: 'config' } },
      ],
      fetchedAt: Date.now() - 1000,
    }
    const { client } = make({ fallback: snapshot, bootstrap: snapshot })
    expect(client.getDetails('banner', {})).toMatchObject({ value: { text: 'ssr' }, source: 'bootstrap', metadata: { owner: 'growth' } })
    expect(client.getDetails('limits', {})).toMatchObject({ value: { max: 3 }, metadata: { kind: 'config' } })
    expect(Object.keys(client.getDetails('limits', {}).metadata!)).toEqual(['kind'])
    expect(Object.keys(client.getConfig('banner'))).toEqual(['text'])
    // The copy is the client's: changing the app's object later changes nothing it holds.
    snapshot.flags[0].metadata.owner = 'changed'
    expect(client.getDetails('banner', {}).metadata).toEqual({ owner: 'growth' })
  })

  test('is applied synchronously inside createClient, before start', () => {
    const { client } = make({ bootstrap: bootstrap() })
    expect(client.getGate('kill', true)).toBe(false)
    expect(client.getDetails('banner', {})).toMatchObject({ value: { text: 'ssr' }, source: 'bootstrap', stale: false })
    expect(client.getStatus()).toMatchObject({ state: 'ready', source: 'bootstrap' })
    expect(server.requests).toHaveLength(0)
  })

  test('its ETag is sent as If-None-Match on the first request; a 304 confirms it', async () => {
    server.always({ status: 304, headers: { ETag: '"boot"' } })
    const { client } = make({ bootstrap: bootstrap({ etag: '"boot"' }) })
    const status = await client.start()
    expect(server.requests[0].headers['if-none-match']).toBe('"boot"')
    expect(status).toMatchObject({ state: 'ready', source: 'network' })
    expect(client.getDetails('kill', true)).toMatchObject({ value: false, source: 'network' })
  })

  test('for another targetingKey it is ignored with BOOTSTRAP_CONTEXT_MISMATCH until the first success', async () => {
    server.always('hang')
    const { client, logger, startHung } = make({ bootstrap: bootstrap({ context: { targetingKey: 'mallory' } }) })
    expect(client.getGate('kill', true)).toBe(true)
    expect(client.getStatus()).toMatchObject({ state: 'loading', error: { code: 'BOOTSTRAP_CONTEXT_MISMATCH' } })
    expect(logger.warnings.join()).toContain('[holdfast]')
    // A failed attempt does not hide it (the failure is logged): the page's bootstrap is broken.
    await startHung()
    expect(client.getStatus()).toMatchObject({ state: 'error', error: { code: 'BOOTSTRAP_CONTEXT_MISMATCH' } })
    expect(logger.warnings.join()).toMatch(/TIMEOUT|timed out/i)
    server.always(flags([{ key: 'kill', value: true }]))
    expect((await client.refresh()).error).toBeUndefined()
  })

  test('a malformed one stays the status error through failed attempts, until the first success; rejected credentials say so instead', async () => {
    server.always({ status: 503, body: 'down' })
    const { client } = make({ bootstrap: { flags: 'no' } as never, fallback: bootstrap() })
    expect(await client.start()).toMatchObject({ source: 'fallback', error: { code: 'BOOTSTRAP_INVALID' } })
    server.always({ status: 401, body: 'no' })
    expect(await client.refresh()).toMatchObject({ state: 'error', error: { code: 'UNAUTHORIZED' } })
    server.always({ status: 503, body: 'down' })
    expect(await client.refresh()).toMatchObject({ error: { code: 'BOOTSTRAP_INVALID' } })
    server.always(flags([{ key: 'kill', value: true }]))
    const status = await client.refresh()
    expect(status).toMatchObject({ state: 'ready', source: 'network' })
    expect(status.error).toBeUndefined()
    server.always({ status: 503, body: 'down' })
    expect(await client.refresh()).toMatchObject({ state: 'stale', error: { code: 'HTTP', httpStatus: 503 } })
  })

  test.each([
    ['null', null],
    ['a string', '{"flags": []}'],
    ['no flags', { context: { targetingKey: 'alice' }, fetchedAt: 1 }],
    ['no context', { flags: [], fetchedAt: 1 }],
    ['flags not an array', { context: { targetingKey: 'alice' }, flags: {}, fetchedAt: 1 }],
    ['a numeric targetingKey', { context: { targetingKey: 7 }, flags: [], fetchedAt: 1 }],
    ['a context that is an array', { context: ['alice'], flags: [], fetchedAt: 1 }],
    ['an array', [{ context: { targetingKey: 'alice' }, flags: [] }]],
  ])('a malformed one (%s) is ignored with BOOTSTRAP_INVALID and never throws', (_name, bad) => {
    const { client } = make({ bootstrap: bad as never })
    expect(client.getStatus()).toMatchObject({ state: 'loading', error: { code: 'BOOTSTRAP_INVALID' } })
    expect(client.getGate('kill', true)).toBe(true)
  })

  test('unreadable entries are skipped and the rest applies', () => {
    const { client } = make({ bootstrap: bootstrap({ flags: [{ nokey: true }, { key: 'kill', value: false }] as never }) })
    expect(client.getGate('kill', true)).toBe(false)
    expect(client.getStatus().error).toBeUndefined()
  })
})

describe('fallback', () => {
  const fallback: Bootstrap = { context: { targetingKey: 'anyone' }, flags: [{ key: 'kill', value: false }, { key: 'only-fallback', value: 'fb' }], fetchedAt: 0 }

  test('serves a first visit with no network, for any user, marked stale and never "ready"', async () => {
    server.always({ status: 503, raw: '' })
    const { client } = make({ fallback })
    // Fallback values stand in: stale until a response confirms them, and the state is not `ready`.
    expect(client.getDetails('kill', true)).toMatchObject({ value: false, source: 'fallback', stale: true })
    expect(client.getStatus().state).toBe('loading')
    const status = await client.start()
    // Nothing of this user's after a failed attempt: `error`, while the fallback values are served.
    expect(status).toMatchObject({ state: 'error', source: 'fallback' })
    expect(client.getValue('only-fallback', 'd')).toBe('fb')
  })

  test('has the lowest precedence and is no longer used after a success', async () => {
    server.always(flags([{ key: 'kill', value: true }]))
    const { client } = make({ fallback, bootstrap: bootstrap() })
    expect(client.getDetails('kill', true)).toMatchObject({ value: false, source: 'bootstrap' })
    expect(client.getDetails('only-fallback', 'd')).toMatchObject({ value: 'fb', source: 'fallback' })
    await client.start()
    expect(client.getDetails('kill', false)).toMatchObject({ value: true, source: 'network' })
    expect(client.getDetails('only-fallback', 'd')).toMatchObject({ value: 'd', source: 'default' })
  })
})

describe('bootstrap versus cache', () => {
  test('the newer of the two wins per flag', async () => {
    const name = uniqueStorageName('boot-cache')
    server.always(flags([{ key: 'kill', value: true }, { key: 'banner', value: { text: 'cached' } }]))
    const seed = make({ storageName: name }).client
    await seed.start()
    await seed.close()

    server.always('hang')
    // An old bootstrap (rendered before the cache was written) loses to the cache...
    const oldMade = make({ storageName: name, bootstrap: bootstrap({ fetchedAt: Date.now() - 60_000 }) })
    const old = oldMade.client
    await oldMade.startHung()
    expect(old.getDetails('banner', {})).toMatchObject({ value: { text: 'cached' }, source: 'cache' })
    await old.close()
    // ...and a fresh one wins over it.
    const freshMade = make({ storageName: name, bootstrap: bootstrap({ fetchedAt: Date.now() + 30_000 }) })
    const fresh = freshMade.client
    await freshMade.startHung()
    expect(fresh.getDetails('banner', {})).toMatchObject({ value: { text: 'ssr' }, source: 'bootstrap' })
  })
})

describe('snapshot', () => {
  test('round-trips into a bootstrap for the same user', async () => {
    const { client } = make()
    await client.start()
    const snap = client.snapshot()
    expect(snap).toMatchObject({ context: { targetingKey: 'alice' }, etag: '"srv"', flags: [{ key: 'kill', value: true, variant: 'on' }] })
    const again = make({ bootstrap: JSON.parse(JSON.stringify(snap)) }).client
    expect(again.getDetails('kill', false)).toMatchObject({ value: true, source: 'bootstrap' })
  })
})

describe('fetchBootstrap', () => {
  test('returns the snapshot with the ETag', async () => {
    const result = await fetchBootstrap({ url: server.url, context: { targetingKey: 'alice' }, headers: { 'X-API-Key': 'k' } })
    expect(result).toMatchObject({ context: { targetingKey: 'alice' }, etag: '"srv"', flags: [{ key: 'kill', value: true }] })
    expect(result!.fetchedAt).toBeTypeOf('number')
    expect(server.requests[0].headers['x-api-key']).toBe('k')
  })

  test.each([
    ['503', { status: 503, raw: '' }],
    ['401', { status: 401, raw: '' }],
    ['HTML', { status: 200, raw: '<html></html>', headers: { 'Content-Type': 'text/html' } }],
    ['{}', { status: 200, body: {} }],
    ['reset', 'reset'],
    ['slow', 'hang'],
    ['a body dripping in, one byte at a time', 'drip'],
  ] as const)('resolves null on %s, never rejects', async (_n, reply) => {
    server.always(reply as never)
    const started = Date.now()
    expect(await fetchBootstrap({ url: server.url, context: { targetingKey: 'alice' }, timeoutMs: 200 })).toBeNull()
    expect(Date.now() - started).toBeLessThan(2000)
  })

  test.each([NaN, 0, -1])('a timeoutMs of %s (an unset environment variable) is the default 1 s, not the 5 s of a client request', async (timeoutMs) => {
    server.always('hang')
    const started = Date.now()
    expect(await fetchBootstrap({ url: server.url, context: { targetingKey: 'alice' }, timeoutMs })).toBeNull()
    expect(Date.now() - started).toBeLessThan(2500)
  })

  test.each([Infinity, 3e9])('a timeoutMs of %s (past the 32-bit timers) waits for the answer instead of timing out at once', async (timeoutMs) => {
    server.always({ ...flags([{ key: 'kill', value: false, variant: 'off' }]), delayMs: 100 })
    expect(await fetchBootstrap({ url: server.url, context: { targetingKey: 'alice' }, timeoutMs })).toMatchObject({ flags: [{ key: 'kill', value: false }] })
  })

  // Before: 1e10 waited up to 24.8 days on a server that never answers, the page render with it
  // (Infinity was 5 s). Infinity is unusable, the default 1 s; a number over a minute is a minute,
  // as the client's requestTimeoutMs (1e10 was the default second, 60,000 times shorter).
  test.each([
    [Infinity, 1000],
    [1e10, 60_000],
  ])('a timeoutMs of %s on a server that never answers resolves null after %s ms, not days', async (timeoutMs, bound) => {
    server.always('hang')
    const realTimeout = globalThis.setTimeout
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    try {
      const result = fetchBootstrap({ url: server.url, context: { targetingKey: 'alice' }, timeoutMs })
      await server.waitForRequests(1)
      vi.advanceTimersByTime(bound - 1)
      expect(await Promise.race([result, new Promise((resolve) => realTimeout(resolve, 200, 'still waiting'))])).toBe('still waiting')
      vi.advanceTimersByTime(1)
      expect(await Promise.race([result, new Promise((resolve) => realTimeout(resolve, 3000, 'still waiting'))])).toBeNull()
    } finally {
      vi.useRealTimers()
    }
  })

  // CONTRACT §3: `timeoutMs` is the caller's. A render that allows 90 s (a flag service that is
  // slow to wake) got null after the default second from a server answering in 1.5 s: the page
  // rendered without the user's flags. Over a minute is a minute, as for requestTimeoutMs.
  test('a timeoutMs over a minute (90,000) waits for a server answering in 1.5 s, not the default second', async () => {
    server.always({ ...flags([{ key: 'kill', value: false, variant: 'off' }]), delayMs: 1500 })
    expect(await fetchBootstrap({ url: server.url, context: { targetingKey: 'alice' }, timeoutMs: 90_000 })).toMatchObject({ flags: [{ key: 'kill', value: false }] })
  })

  // Before: a bootstrap without a context (or with a context without a targetingKey) came back,
  // after a request for nobody, and createClient then showed it as BOOTSTRAP_INVALID. CONTRACT §3:
  // null on any failure; a render with no user to render for is one. Nothing is asked.
  test.each([undefined, null, {}, { targetingKey: 7 }])('a context of %j resolves null, asks nothing, never rejects', async (context) => {
    expect(await fetchBootstrap({ url: server.url, context: context as never })).toBeNull()
    expect(server.requests).toHaveLength(0)
  })

  test('a redirect to another host resolves null, and the configured headers never reach that host', async () => {
    // A login proxy, a hijacked DNS name, a misrouted ingress: the other host is not the flag service.
    const other = await createFaultServer(flags([{ key: 'kill', value: false }], '"other"'))
    try {
      const elsewhere = other.url.replace('127.0.0.1', 'localhost')
      server.always({ status: 307, headers: { Location: `${elsewhere}/ofrep/v1/evaluate/flags` } })
      const result = await fetchBootstrap({ url: server.url, context: { targetingKey: 'alice' }, headers: { 'X-API-Key': 'secret' }, timeoutMs: 2000 })
      expect(result).toBeNull()
      expect(other.requests).toEqual([])
      // A 307/308 on the same host (a moved path) is still followed, method, body and headers kept.
      server.next({ status: 308, headers: { Location: '/v2/ofrep/v1/evaluate/flags' } })
      server.always(flags([{ key: 'kill', value: true }], '"moved"'))
      const moved = await fetchBootstrap({ url: server.url, context: { targetingKey: 'alice' }, headers: { 'X-API-Key': 'secret' }, timeoutMs: 2000 })
      expect(moved).toMatchObject({ etag: '"moved"', flags: [{ key: 'kill', value: true }] })
      expect(server.requests.at(-1)).toMatchObject({ method: 'POST', path: '/v2/ofrep/v1/evaluate/flags', body: { context: { targetingKey: 'alice' } } })
      expect(server.requests.at(-1)!.headers['x-api-key']).toBe('secret')
    } finally {
      await other.close()
    }
  })

  test("a relay serving old values says so: the bootstrap is dated by the relay's fetchedAt, and a newer cache wins over it", async () => {
    // Yesterday this browser cached the kill switch ON. Today the Next.js server reaches a relay
    // whose upstream has been failing for three days: it serves its last known good (OFF), saying
    // `stale` and when it fetched it.
    const storageName = uniqueStorageName('relay-stale')
    const earlier = make({ storageName })
    await earlier.client.start()
    expect(earlier.client.getGate('kill')).toBe(true)
    await earlier.client.close()
    const threeDaysAgo = Date.now() - 3 * 24 * 3600_000
    server.always({ status: 200, body: { flags: [{ key: 'kill', value: false }], metadata: { holdfast: { source: 'data-dir', fetchedAt: threeDaysAgo, stale: true } } } })
    const ssr = await fetchBootstrap({ url: server.url, context: { targetingKey: 'alice' } })
    expect(ssr).toMatchObject({ fetchedAt: threeDaysAgo, flags: [{ key: 'kill', value: false }] })

    server.always('hang')
    const { client, startHung } = make({ storageName, bootstrap: ssr! })
    expect(client.getGate('kill')).toBe(false) // the server render and hydration: the bootstrap
    await startHung()
    // Once the cache is read, the value the browser had yesterday is newer than the relay's.
    expect(client.getDetails('kill', false)).toMatchObject({ value: true, source: 'cache' })
  })

  test('a relay serving its last known good through an outage: the bootstrap says stale, and the page shows it so until a fresh answer', async () => {
    // Before: the bootstrap carried no staleness, so the server render and every evaluation until
    // the browser's first answer showed the relay's held values as fresh (state ready, stale false).
    const relay = await createFlagServer({ upstream: server.url, port: 0, logger: { info() {}, warn() {}, error() {} }, maxEventLoopDelayMs: 0 })
    try {
      expect((await fetchBootstrap({ url: relay.url, context: { targetingKey: 'alice' } }))?.stale).toBeUndefined()
      server.always({ status: 503 })
      const ssr = await fetchBootstrap({ url: relay.url, context: { targetingKey: 'alice' } })
      expect(ssr).toMatchObject({ stale: true, flags: [{ key: 'kill', value: true }] })

      const { client } = make({ url: relay.url, bootstrap: ssr! })
      expect(client.getDetails('kill', false)).toMatchObject({ value: true, source: 'bootstrap', stale: true })
      expect(client.getStatus()).toMatchObject({ state: 'stale', source: 'bootstrap', error: { code: 'UPSTREAM_STALE' } })
      // Handed on (another render, a worker), the snapshot still says so.
      expect(client.snapshot().stale).toBe(true)
      // The relay still stale: its 304 to the bootstrap's ETag confirms a stale snapshot.
      await client.start()
      expect(client.getStatus()).toMatchObject({ state: 'stale', source: 'network', error: { code: 'UPSTREAM_STALE' } })
      expect(client.getDetails('kill', false)).toMatchObject({ value: true, stale: true })

      server.always(flags([{ key: 'kill', value: true, variant: 'on' }], '"srv2"'))
      await client.refresh()
      expect(client.getStatus()).toMatchObject({ state: 'ready', source: 'network' })
      expect(client.getStatus().error).toBeUndefined()
      expect(client.getDetails('kill', false)).toMatchObject({ value: true, stale: false })
      expect(client.snapshot().stale).toBeUndefined()
    } finally {
      await relay.close()
    }
  })

  test('a body over 16 MiB resolves null, however fast it comes: it is not rendered into the page', async () => {
    // Valid JSON: one flag whose value is 50 MB of text (a runaway export, a hostile server).
    const huge = JSON.stringify({ flags: [{ key: 'kill', value: true }, { key: 'copy', value: 'x'.repeat(50 * 1024 * 1024) }] })
    server.always({ status: 200, raw: huge, headers: { 'Content-Type': 'application/json' } })
    const started = Date.now()
    expect(await fetchBootstrap({ url: server.url, context: { targetingKey: 'alice' }, timeoutMs: 20_000 })).toBeNull()
    expect(Date.now() - started).toBeLessThan(20_000)
    // Just under the limit is a bootstrap like any other.
    server.always({ status: 200, raw: JSON.stringify({ flags: [{ key: 'copy', value: 'x'.repeat(15 * 1024 * 1024) }] }), headers: { 'Content-Type': 'application/json' } })
    expect(await fetchBootstrap({ url: server.url, context: { targetingKey: 'alice' }, timeoutMs: 20_000 })).toMatchObject({ flags: [{ key: 'copy' }] })
    // 65 MB of JSON made, sent and read: 3 s under two busy loops, so the 5 s default would cut
    // the 20 s the bounds above allow before they could say anything.
  }, 45_000)

  test('resolves null when the server does not exist or the input is unusable', async () => {
    expect(await fetchBootstrap({ url: 'http://127.0.0.1:1', context: { targetingKey: 'a' } })).toBeNull()
    const cyclic: Record<string, unknown> = { targetingKey: 'a' }
    cyclic.self = cyclic
    expect(await fetchBootstrap({ url: server.url, context: cyclic as never })).toBeNull()
  })
})
