// What a hostile app, clock or server can throw at the client (issue 11: what the app passes in,
// clocks, server answers, storage). Each case is one a user meets; none may throw into the app,
// serve a wrong value, hang, or flood the server.
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { createClient, createMemoryStorage, type Bootstrap, type FlagClient, type FlagStorage } from '@holdfast/core'
import { createFaultServer, flags, type FaultServer } from '../support/faultServer'
import { createManualClock, createTestLogger, throughTimeout, uniqueStorageName } from '../support/clock'

let server: FaultServer
const clients: FlagClient[] = []
beforeEach(async () => {
  server = await createFaultServer(flags([{ key: 'a', value: true }, { key: 'cfg', value: { tier: 'gold', list: [1, 2] } }]))
})
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await server.close()
})

function make(options: Partial<Parameters<typeof createClient>[0]> = {}) {
  const logger = createTestLogger()
  const clock = createManualClock()
  const client = createClient({ url: server.url, context: { targetingKey: 'u' }, storageName: uniqueStorageName('hostile'), logger, clock, random: () => 0.5, ...options })
  clients.push(client)
  return { client, logger, clock }
}

describe('what the app passes in', () => {
  test.each([NaN, 0, -5, Infinity])('refreshIntervalMs %s: no polling storm, a warning', async (value) => {
    const { client, logger, clock } = make({ refreshIntervalMs: value })
    await client.start()
    // 0 is "off" (its default); the others fall back to it with a warning.
    if (value !== 0) expect(logger.warnings.join()).toMatch(/refreshIntervalMs/)
    expect(clock.pending()).toEqual([])
  })

  test('a tiny refreshIntervalMs is raised to one second', async () => {
    const { client, clock } = make({ refreshIntervalMs: 1 })
    await client.start()
    expect(clock.pending()).toEqual([1000])
  })

  test.each([NaN, 0, -1, Infinity])('requestTimeoutMs %s falls back to 5 s: no instant timeouts', async (value) => {
    server.always({ ...flags([{ key: 'a', value: false }]), delayMs: 30 })
    const { client, logger, clock } = make({ requestTimeoutMs: value })
    const started = client.start()
    await server.waitForRequests(1)
    clock.advance(4000) // well past any "instant" timeout, still under the default
    const status = await started
    expect(status.state).toBe('ready')
    expect(client.getGate('a', true)).toBe(false)
    expect(logger.warnings.join()).toMatch(/requestTimeoutMs/)
  })

  // Timers hold 32 bits: Node and browsers fire a setTimeout over 2^31 - 1 ms (24.8 days) at once.
  // A finite but huge option (a value in seconds read as ms, 1e10) must not turn into a polling
  // storm or an instant timeout. The bug is in the real timers, so this runs on the real clock.
  test('a refreshIntervalMs or requestTimeoutMs past 2^31 ms is no storm and no instant timeout', async () => {
    server.always({ ...flags([{ key: 'a', value: false }]), delayMs: 50 })
    const { client } = make({ clock: undefined, refreshIntervalMs: 3e9, requestTimeoutMs: 1e10 })
    const status = await client.start()
    expect(status.state).toBe('ready')
    expect(client.getGate('a', true)).toBe(false)
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(server.requests).toHaveLength(1)
  })

  // Before: accepted, so a server that never answers held the request (and close()'s flush of
  // the events) for 24.8 days, the most a timer holds. Then (client-small) over a minute was the
  // default 5 s: an app that asked for 120 s for a slow server got its requests cut at 5 s, 24
  // times shorter, every one a TIMEOUT. Now it is the nearest allowed, a minute, with a warning.
  test.each([120_000, 3_600_000, 1e10])('requestTimeoutMs %s (over a minute) waits a minute, with a warning: a hanging server fails the request then', async (value) => {
    server.always('hang')
    const { client, logger, clock } = make({ requestTimeoutMs: value, events: { url: `${server.url}/events` } })
    expect(logger.warnings.join()).toMatch(/requestTimeoutMs .* is not usable; using 60000/)
    const started = client.start()
    await server.waitForRequests(1, 10_000)
    clock.advance(5000)
    await new Promise((resolve) => setTimeout(resolve, 20))
    // A 20 s answer would still be taken: not cut at the default 5 s.
    expect(client.getStatus().state).toBe('loading')
    clock.advance(55_000)
    expect(await started).toMatchObject({ state: 'error', error: { code: 'TIMEOUT' } })
    client.logEvent('clicked')
    let closed = false
    const closing = client.close().then(() => (closed = true))
    for (let i = 0; i < 50 && !closed; i++) {
      clock.advance(60_000)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    await closing
    expect(closed).toBe(true)
  })

  const throwing = {
    get context(): never {
      throw new Error('getter')
    },
    flags: [],
    fetchedAt: 1,
  }
  const proxy = new Proxy({} as Bootstrap, {
    get() {
      throw new Error('proxy')
    },
    ownKeys() {
      throw new Error('proxy')
    },
  })
  const revocable = Proxy.revocable({ context: { targetingKey: 'u' }, flags: [], fetchedAt: 1 }, {})
  revocable.revoke()
  test.each([
    ['a throwing getter', throwing],
    ['a throwing Proxy', proxy],
    ['a revoked Proxy', revocable.proxy],
  ])('a bootstrap with %s is BOOTSTRAP_INVALID, never thrown; as fallback it is ignored', async (_name, bad) => {
    const { client } = make({ bootstrap: bad as Bootstrap, fallback: bad as Bootstrap })
    expect(client.getStatus().error?.code).toBe('BOOTSTRAP_INVALID')
    expect(client.getGate('a', false)).toBe(false)
    expect((await client.start()).state).toBe('ready')
  })

  test('bootstrap and fallback are copied at createClient, and values handed out are immutable', async () => {
    const bootstrap: Bootstrap = { context: { targetingKey: 'u' }, flags: [{ key: 'cfg', value: { tier: 'silver', list: [1] } }], fetchedAt: Date.now() }
    const fallback: Bootstrap = { context: { targetingKey: 'x' }, flags: [{ key: 'fb', value: { on: true } }], fetchedAt: 0 }
    const { client } = make({ bootstrap, fallback, storage: 'memory' })
    ;(bootstrap.flags[0].value as { tier: string }).tier = 'HACKED'
    ;(fallback.flags[0].value as { on: boolean }).on = false
    expect(client.getConfig('cfg')).toEqual({ tier: 'silver', list: [1] })
    expect(client.getConfig('fb')).toEqual({ on: true })
    const handed = client.getConfig<{ tier: string; list: number[] }>('cfg')
    expect(() => {
      handed.tier = 'mutated'
    }).toThrow()
    expect(() => handed.list.push(3)).toThrow()
    await client.start()
    const fromNetwork = client.getConfig<{ tier: string; list: number[] }>('cfg')
    expect(() => fromNetwork.list.push(3)).toThrow()
    expect(client.getConfig('cfg')).toEqual({ tier: 'gold', list: [1, 2] })
    expect(client.snapshot().flags.find((f) => f.key === 'cfg')?.value).toEqual({ tier: 'gold', list: [1, 2] })
  })

  test('a context with a BigInt or a cycle: setContext resolves with INVALID_CONTEXT, never rejects, sends nothing', async () => {
    const { client } = make()
    await client.start()
    const cyclic: Record<string, unknown> = { targetingKey: 'loop' }
    cyclic.self = cyclic
    for (const bad of [{ targetingKey: 'big', n: 10n }, cyclic]) {
      const before = server.requests.length
      const status = await client.setContext(bad as never)
      expect(status).toMatchObject({ state: 'error', error: { code: 'INVALID_CONTEXT' } })
      expect(server.requests.length).toBe(before)
      expect(client.getGate('a', false)).toBe(false) // the previous user's values are not this one's
    }
    expect((await client.setContext({ targetingKey: 'fine' })).state).toBe('ready')
  })

  // `headers: { get Authorization() { return `Bearer ${auth.token()}` } }`, with a token() that throws
  // until login. Before, start() resolved `loading` (the cache key read the headers and threw, "start
  // failed unexpectedly"): no request, no error in the status, and every later answer failed to be
  // cached. Now the getter's throw is what a throwing headers function is: a NETWORK error, said so.
  test('static headers whose getter throws (no token yet): start() says NETWORK, and works once the getter does', async () => {
    let token: string | undefined
    const headers = {}
    Object.defineProperty(headers, 'Authorization', {
      enumerable: true,
      get() {
        if (!token) throw new Error('not logged in')
        return `Bearer ${token}`
      },
    })
    const { client, logger } = make({ headers: headers as Record<string, string> })
    const status = await client.start()
    expect(status).toMatchObject({ state: 'error', error: { code: 'NETWORK' } })
    expect(status.error!.message).toMatch(/headers/)
    token = 't1'
    expect((await client.refresh()).state).toBe('ready')
    expect(server.requests.at(-1)!.headers.authorization).toBe('Bearer t1')
    expect(client.getGate('a')).toBe(true)
    expect(logger.errors).toEqual([])
  })

  // A context whose `targetingKey` cannot be read: a revoked Proxy (a reactive store's object after
  // its owner went away), a getter that throws. Before, setContext resolved with the previous user's
  // `ready` status, switched nothing and said nothing (the throw was swallowed): the app believed
  // the new user was shown while the previous one's values stayed. Now it is refused as a context
  // without a targetingKey is: logged, paused (the values held are nobody's) until a usable one.
  test('setContext with a context whose targetingKey cannot be read is refused out loud, not swallowed', async () => {
    const { client, logger } = make()
    await client.start()
    const revoked = Proxy.revocable({ targetingKey: 'bob' }, {})
    revoked.revoke()
    const before = server.requests.length
    await client.setContext(revoked.proxy as never)
    expect(logger.errors.join()).toMatch(/targetingKey/)
    await client.refresh()
    expect(server.requests.length).toBe(before) // paused: nothing asked for anyone
    expect((await client.setContext({ targetingKey: 'carol' })).state).toBe('ready')
    expect(() => createClient({ url: server.url, context: revoked.proxy as never })).toThrow(/\[holdfast\] createClient needs a `context`/)
  })

  test('createClient with an unserialisable context does not throw: state error, no request', async () => {
    const { client } = make({ context: { targetingKey: 'big', n: 1n } as never })
    expect(client.getStatus().error?.code).toBe('INVALID_CONTEXT')
    expect((await client.start()).state).toBe('error')
    expect(server.requests).toHaveLength(0)
  })

  test.each([NaN, Infinity, Date.now() + 2 * 86_400_000])('a bootstrap fetchedAt of %s never wins precedence over the cache', async (fetchedAt) => {
    const storageName = uniqueStorageName('fetchedAt')
    server.always(flags([{ key: 'a', value: true }]))
    const seed = make({ storageName }).client
    await seed.start()
    await seed.close()
    server.always('hang')
    const made = make({ storageName, bootstrap: { context: { targetingKey: 'u' }, flags: [{ key: 'a', value: false }], fetchedAt }, requestTimeoutMs: 300 })
    await throughTimeout(made.clock, server, 300, () => made.client.start())
    expect(made.client.getDetails('a', false)).toMatchObject({ value: true, source: 'cache' })
  })
})

describe('clocks', () => {
  test('a cache entry written while the clock ran hours ahead does not beat a fresher bootstrap', async () => {
    const storageName = uniqueStorageName('skew')
    const ahead = createManualClock()
    ahead.advance(5 * 3_600_000)
    server.always(flags([{ key: 'a', value: true }]))
    const seed = createClient({ url: server.url, context: { targetingKey: 'u' }, storageName, logger: createTestLogger(), clock: ahead })
    await seed.start()
    await seed.close()
    server.always('hang')
    const made = make({ storageName, bootstrap: { context: { targetingKey: 'u' }, flags: [{ key: 'a', value: false }], fetchedAt: Date.now() - 1000 }, requestTimeoutMs: 300 })
    await throughTimeout(made.clock, server, 300, () => made.client.start())
    expect(made.client.getDetails('a', true)).toMatchObject({ value: false, source: 'bootstrap' })
  })
})

describe('clocks and the LRU', () => {
  test('an entry written while the clock ran hours ahead is not "most recent" for hours: it is the first evicted', async () => {
    const inner = createMemoryStorage()
    const ahead = createManualClock()
    ahead.advance(5 * 3_600_000)
    const skewed = createClient({ url: server.url, context: { targetingKey: 'u0' }, storage: inner, logger: createTestLogger(), clock: ahead })
    await skewed.start()
    await skewed.close()
    const { client } = make({ storage: inner, context: { targetingKey: 'u1' } })
    await client.start()
    for (let i = 2; i <= 10; i++) await client.setContext({ targetingKey: `u${i}` })
    await client.close()
    const reader = make({ storage: inner, context: { targetingKey: 'u0' } })
    server.always('hang')
    await throughTimeout(reader.clock, server, 5000, () => reader.client.start())
    expect(reader.client.getStatus().source).toBe('none') // u0 went, not u1
    await throughTimeout(reader.clock, server, 5000, () => reader.client.setContext({ targetingKey: 'u1' }))
    expect(reader.client.getStatus().source).toBe('cache')
  })
})

describe('server answers', () => {
  test('a valid JSON value nested 500 levels deep is a value, not the default', async () => {
    let deep: unknown = 'core'
    for (let i = 0; i < 500; i++) deep = { next: deep }
    server.always(flags([{ key: 'deep', value: deep }]))
    const { client } = make()
    await client.start()
    let value = client.getConfig<{ next?: unknown }>('deep', { fallback: true } as never)
    let depth = 0
    while (value && typeof value === 'object' && 'next' in value) {
      value = value.next as never
      depth++
    }
    expect(depth).toBe(500)
    expect(value).toBe('core')
  })
})

describe('storage', () => {
  test('close() resolves only after the last cache write and its eviction; the eleventh user evicts the least recently used', async () => {
    const inner = createMemoryStorage()
    // Slow writes: an unfinished write at close() would show as a missing entry below.
    const slow: FlagStorage = { ...inner, set: async (k, v) => (await new Promise((r) => setTimeout(r, 5)), inner.set(k, v)) }
    const cacheKeys = async () => (await inner.keys()).filter((k) => k.startsWith('holdfast:flags:'))
    const { client } = make({ storage: slow })
    await client.start()
    for (let i = 1; i <= 10; i++) await client.setContext({ targetingKey: `user-${i}` })
    // Eleven users written, one after the other in the same few milliseconds: `u` is the oldest.
    await client.close()
    const keys = await cacheKeys()
    expect(keys).toHaveLength(10)
    const check = make({ storage: inner })
    server.always('hang')
    await throughTimeout(check.clock, server, 5000, () => check.client.start())
    expect(check.client.getStatus().source).toBe('none') // `u` was evicted, reliably
    await throughTimeout(check.clock, server, 5000, () => check.client.setContext({ targetingKey: 'user-1' }))
    expect(check.client.getStatus().source).toBe('cache')
  })
})

describe('storage: a read never brings back an evicted entry', () => {
  test("a slow recency touch of one user cannot land after the eleventh user's eviction removed it", async () => {
    const inner = createMemoryStorage()
    const cacheKeys = async () => (await inner.keys()).filter((k) => k.startsWith('holdfast:flags:'))
    // Ten users cached, u0 the least recently used.
    const seed = make({ storage: inner, context: { targetingKey: 'u0' } }).client
    await seed.start()
    for (let i = 1; i <= 9; i++) await seed.setContext({ targetingKey: `u${i}` })
    await seed.close()
    expect(await cacheKeys()).toHaveLength(10)

    // A new page for u0: reading its entry records the use with a write, which is slow here.
    let sets = 0
    const slowTouch: FlagStorage = {
      ...inner,
      set: async (key, value) => {
        if (sets++ === 0) await new Promise((r) => setTimeout(r, 300))
        return inner.set(key, value)
      },
    }
    server.next({ status: 503, raw: '' }) // u0's own request fails: nothing of u0 is rewritten
    const { client } = make({ storage: slowTouch, context: { targetingKey: 'u0' } })
    await client.start()
    await client.setContext({ targetingKey: 'u10' }) // written: eleven entries, one must go
    await client.close()
    await new Promise((r) => setTimeout(r, 400)) // past the slow touch, whatever the order
    const left = await cacheKeys()
    expect(left).toHaveLength(10)
    // u0 was used last (read by this page), so the least recently used, u1, is the one evicted.
    const reader = make({ storage: inner, context: { targetingKey: 'u0' } })
    server.always('hang')
    await throughTimeout(reader.clock, server, 5000, () => reader.client.start())
    expect(reader.client.getStatus().source).toBe('cache')
    await throughTimeout(reader.clock, server, 5000, () => reader.client.setContext({ targetingKey: 'u1' }))
    expect(reader.client.getStatus().source).toBe('none')
  })
})

describe('the url (issue 12 item 8)', () => {
  test.each([
    ['flags.example.com', /createClient: `url` "flags.example.com" has no http:\/\/ or https:\/\/ scheme.*https:\/\/flags\.example\.com/],
    ['localhost:8787', /no http:\/\/ or https:\/\/ scheme/],
    ['https://flags.example.com/ofrep/v1/evaluate/flags', /endpoint path.*: https:\/\/flags\.example\.com$/],
    ['http://127.0.0.1:8787/ofrep/v1/', /endpoint path/],
    ['', /`url` is missing/],
  ])('%j is rejected at creation with a clear message', (url, message) => {
    expect(() => createClient({ url, context: { targetingKey: 'u' } })).toThrow(message)
  })

  test.each(['https://flags.example.com', 'http://127.0.0.1:8787/', 'https://example.com/flags/', '/flags'])('%j is accepted', (url) => {
    expect(() => createClient({ url, context: { targetingKey: 'u' }, storage: 'memory' })).not.toThrow()
  })
})
