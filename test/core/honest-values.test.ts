// Values are honest (issue 12 items 1, 2, 4; 304 and metadata.holdfast rules): one user's values
// are never served as another's after an attempt for the new user, fallback values stand in
// without claiming to be fresh or counting as exposures, a 304 confirms only the snapshot its ETag
// names, a relay's staleness reaches the status, and the log says what is really served.
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { createClient, createMemoryStorage, type Bootstrap, type FlagClient, type FlagStorage } from '@holdfast/core'
import { createFlagServer, silentLogger } from '@holdfast/server'
import { createFaultServer, delayed, flags, type FaultServer } from '../support/faultServer'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'

let server: FaultServer
const clients: FlagClient[] = []
beforeEach(async () => {
  server = await createFaultServer(flags([{ key: 'beta-dashboard', value: true }, { key: 'shop', value: 'pro-shop' }]))
})
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await server.close()
})

function make(options: Partial<Parameters<typeof createClient>[0]> = {}) {
  const logger = createTestLogger()
  const client = createClient({ url: server.url, context: { targetingKey: 'alice', plan: 'pro' }, storageName: uniqueStorageName('honest'), logger, clock: createManualClock(), ...options })
  clients.push(client)
  return { client, logger }
}

const fallback: Bootstrap = { context: { targetingKey: 'anyone' }, flags: [{ key: 'shop', value: 'classic' }], fetchedAt: 0 }

describe('a user switch during an outage (issue 12 item 1)', () => {
  test("Bob is never shown Alice's values once his first attempt failed: fallback, state error", async () => {
    const { client } = make({ fallback })
    await client.start()
    expect(client.getValue('shop', 'none')).toBe('pro-shop')
    server.always({ status: 503, raw: '' })
    const switching = client.setContext({ targetingKey: 'bob', plan: 'free' })
    // While Bob's attempt is out, Alice's values stay on screen (no flash), state loading.
    expect(client.getStatus().state).toBe('loading')
    const status = await switching
    expect(status).toMatchObject({ state: 'error', source: 'fallback' })
    expect(client.getDetails('shop', 'none')).toMatchObject({ value: 'classic', source: 'fallback', stale: true })
    expect(client.getDetails('beta-dashboard', false)).toMatchObject({ value: false, source: 'default' })
    expect(client.snapshot().flags).toEqual([])
  })

  test('A → B → A with a slow first answer for A that ignores the abort: the older answer never overwrites the newer', async () => {
    // A fetch that cannot be aborted: every request runs to the end, whatever the client does.
    const unabortable: typeof fetch = (input, init) => fetch(input, { ...init, signal: undefined })
    const { client } = make({ fetch: unabortable, requestTimeoutMs: 5000 })
    server.next(flags([{ key: 'shop', value: 'alice-v1' }]))
    await client.start()
    server.next(delayed(flags([{ key: 'shop', value: 'alice-OLD' }]), 300))
    const slow = client.refresh()
    await server.waitForRequests(2)
    server.next(flags([{ key: 'shop', value: 'bob' }]))
    await client.setContext({ targetingKey: 'bob' })
    server.next(flags([{ key: 'shop', value: 'alice-NEW' }]))
    await client.setContext({ targetingKey: 'alice', plan: 'pro' })
    expect(client.getValue('shop', 'none')).toBe('alice-NEW')
    await slow
    await new Promise((r) => setTimeout(r, 350))
    expect(client.getValue('shop', 'none')).toBe('alice-NEW')
  })
})

describe('fallback values stand in (issue 12 item 2)', () => {
  test('are stale until confirmed, do not make the state ready, and log no exposure while the cache is read', async () => {
    // A storage whose reads the test releases: the cache is "being read" until then.
    const inner = createMemoryStorage()
    let release: () => void = () => {}
    const gate = new Promise<void>((r) => (release = r))
    const slow: FlagStorage = { ...inner, get: async (key) => (await gate, inner.get(key)) }
    server.always(delayed(flags([{ key: 'shop', value: 'pro-shop' }]), 50))
    const { client } = make({ fallback, storage: slow, events: { url: `${server.url}/events`, flushIntervalMs: 60_000 } })
    const started = client.start()
    await new Promise((r) => setTimeout(r, 20))
    expect(client.getStatus()).toMatchObject({ state: 'loading', source: 'fallback' })
    expect(client.getStatus().cacheRead).toBeUndefined()
    expect(client.getDetails('shop', 'none')).toMatchObject({ value: 'classic', source: 'fallback', stale: true })
    for (let i = 0; i < 3; i++) client.getValue('shop', 'none')
    expect(client.getEventStats().queued).toBe(0)
    release()
    await started
    expect(client.getStatus()).toMatchObject({ state: 'ready', source: 'network', cacheRead: true })
    client.getValue('shop', 'none')
    expect(client.getEventStats().queued).toBe(1)
  })
})

describe('a 304 confirms only the snapshot its ETag names (§2.1)', () => {
  test("a flag only the cache had, when the ETag came from a bootstrap, is treated as absent", async () => {
    const storageName = uniqueStorageName('etag-keys')
    server.always(flags([{ key: 'a', value: 1 }, { key: 'cache-only', value: 'c' }]))
    const seed = make({ storageName }).client
    await seed.start()
    await seed.close()
    const bootstrap: Bootstrap = { context: { targetingKey: 'alice', plan: 'pro' }, flags: [{ key: 'a', value: 2 }], etag: '"boot"', fetchedAt: Date.now() + 10 }
    server.always({ status: 304, raw: '' })
    const { client } = make({ storageName, bootstrap })
    // Before the answer the cache fills what the bootstrap lacks.
    const status = await client.start()
    expect(server.requests.at(-1)!.headers['if-none-match']).toBe('"boot"')
    expect(status.state).toBe('ready')
    expect(client.getDetails('a', 0)).toMatchObject({ value: 2, source: 'network', stale: false })
    expect(client.getDetails('cache-only', 'none')).toMatchObject({ value: 'none', source: 'default', errorCode: 'FLAG_NOT_FOUND' })
  })
  test('a cached ETag is not sent when a newer bootstrap replaced the values it names: the 304 cannot confirm the bootstrap values', async () => {
    // Real server: `a` is 1 now. The cache holds its snapshot (a = 1) and its ETag; a newer bootstrap
    // without an ETag (rendered while `a` was briefly 2) wins per flag. A request naming the cached
    // ETag would be answered 304 ("a = 1 is current"), which must not turn the bootstrap's a = 2
    // into a fresh network value.
    const real = await createFlagServer({
      flags: { flags: { a: { state: 'ENABLED', variants: { one: 1, two: 2 }, defaultVariant: 'one' } } },
      port: 0,
      logger: silentLogger,
      maxEventLoopDelayMs: 0,
    })
    try {
      const storageName = uniqueStorageName('etag-newer-bootstrap')
      const seed = make({ url: real.url, storageName }).client
      await seed.start()
      expect(seed.getValue('a', 0)).toBe(1)
      await seed.close()
      const bootstrap: Bootstrap = { context: { targetingKey: 'alice', plan: 'pro' }, flags: [{ key: 'a', value: 2 }], fetchedAt: Date.now() + 60_000 }
      const { client } = make({ url: real.url, storageName, bootstrap })
      expect(client.getValue('a', 0)).toBe(2)
      expect((await client.start()).state).toBe('ready')
      expect(client.getDetails('a', 0)).toMatchObject({ value: 1, source: 'network', stale: false })
    } finally {
      await real.close()
    }
  })

  test('a bootstrap ETag is not sent when a newer cache entry replaced the values it names', async () => {
    // The bootstrap (a = 1, ETag "boot") is older than the cache (a = 2, saved without an ETag after
    // a partial answer). A 304 to "boot" says a = 1 is current: it must not confirm the cache's 2.
    const storageName = uniqueStorageName('etag-newer-cache')
    server.always(flags([{ key: 'a', value: 2 }, { key: 'b', errorCode: 'PARSE_ERROR' }]))
    const seed = make({ storageName }).client
    await seed.start()
    await seed.close()
    const bootstrap: Bootstrap = { context: { targetingKey: 'alice', plan: 'pro' }, flags: [{ key: 'a', value: 1 }], etag: '"boot"', fetchedAt: Date.now() - 60_000 }
    // The server's current snapshot is the bootstrap's: a = 1 under "boot".
    server.always((request) => (request.headers['if-none-match'] === '"boot"' ? { status: 304, raw: '' } : flags([{ key: 'a', value: 1 }], '"boot"')))
    const { client } = make({ storageName, bootstrap })
    expect((await client.start()).state).toBe('ready')
    expect(client.getDetails('a', 0)).toMatchObject({ value: 1, source: 'network', stale: false })
  })
})

describe('metadata.holdfast: staleness reaches the browser (§9)', () => {
  test('stale: true marks the flags stale, the state stale with UPSTREAM_STALE, and updatedAt is no later than fetchedAt', async () => {
    const fetchedAt = Date.now() - 3_600_000
    server.always({
      status: 200,
      body: { flags: [{ key: 'shop', value: 'pro-shop' }], metadata: { holdfast: { source: 'data-dir', fetchedAt, stale: true } } },
    })
    const { client, logger } = make()
    const status = await client.start()
    expect(status).toMatchObject({ state: 'stale', source: 'network', error: { code: 'UPSTREAM_STALE' } })
    const details = client.getDetails('shop', 'none')
    expect(details).toMatchObject({ value: 'pro-shop', source: 'network', stale: true })
    expect(details.updatedAt).toBeLessThanOrEqual(fetchedAt)
    expect(logger.warnings.join('\n')).toContain('stale')
    server.always({ status: 200, body: { flags: [{ key: 'shop', value: 'pro-shop' }], metadata: { holdfast: { source: 'upstream', fetchedAt: Date.now(), stale: false } } } })
    expect((await client.refresh()).state).toBe('ready')
    expect(client.getDetails('shop', 'none').stale).toBe(false)
  })

  test.each([
    ['not an object', 'yes'],
    ['wrong types', { source: 3, fetchedAt: 'soon', stale: 'very' }],
    ['NaN-like fetchedAt', { fetchedAt: null, stale: false }],
  ])('is read tolerantly (%s): the answer is applied as a normal one', async (_name, holdfast) => {
    server.always({ status: 200, body: { flags: [{ key: 'shop', value: 'x' }], metadata: { holdfast } } })
    const { client } = make()
    expect((await client.start()).state).toBe('ready')
    expect(client.getDetails('shop', 'none')).toMatchObject({ value: 'x', stale: false })
  })
})

describe('honest messages when nothing is known (issue 12 item 4)', () => {
  test('server down and no cache: the log says defaults are served, never "the last known values"', async () => {
    server.always({ status: 503, raw: '' })
    const { client, logger } = make()
    await client.start()
    const text = logger.warnings.join('\n')
    expect(text).not.toContain('last known')
    expect(text).toContain("caller's default")
  })

  test('server down with fallback: the log names the fallback values', async () => {
    server.always('reset')
    const { client, logger } = make({ fallback })
    await client.start()
    expect(logger.warnings.join('\n')).toMatch(/fallback/)
    expect(logger.warnings.join('\n')).not.toContain('last known')
  })

  test('EMPTY_RESPONSE is reported once, in one sentence, and an outage that lasts is not repeated per retry', async () => {
    const { client, logger } = make()
    await client.start()
    server.always({ status: 200, body: { flags: [] } })
    await client.refresh()
    await client.refresh()
    const empty = logger.warnings.filter((w) => w.includes('EMPTY_RESPONSE'))
    expect(empty).toHaveLength(1)
    expect(empty[0]).toContain('serving the last known values')
    expect(empty[0].match(/values kept|last known/g)).toHaveLength(1)
  })
})

describe('what the client hands out cannot change what it holds', () => {
  test("a flag's metadata read from getDetails cannot be changed under the next reader", async () => {
    server.always(flags([{ key: 'shop', value: 'pro-shop', metadata: { owner: 'team-a' } }]))
    const { client } = make()
    await client.start()
    const details = client.getDetails('shop', '')
    try {
      ;(details.metadata as Record<string, unknown>).owner = 'someone-else'
    } catch {
      // frozen: the assignment throws in strict mode
    }
    expect(client.getDetails('shop', 'other-default').metadata).toEqual({ owner: 'team-a' })
  })

  // Readers with the same default share one memoised details object (what keeps hooks from
  // re-rendering): one that changed it in place (normalising `value`, marking `stale`) changed what
  // every later reader of that flag was given, until the flag itself changed.
  test('the details object from getDetails cannot be changed under the next reader with the same default', async () => {
    const { client } = make()
    await client.start()
    const details = client.getDetails('shop', '')
    try {
      ;(details as { value: string }).value = 'free-shop'
      ;(details as { stale: boolean }).stale = true
    } catch {
      // frozen: the assignment throws in strict mode
    }
    expect(client.getDetails('shop', '')).toMatchObject({ value: 'pro-shop', stale: false })
    try {
      ;(client.getDetails('missing', 'd') as { value: string }).value = 'x'
    } catch {}
    expect(client.getDetails('missing', 'd').value).toBe('d')
  })

  // getStatus() hands one object to every reader (useFlagStatus in every component, the
  // OpenFeature provider, the client's own exposure and readiness checks): one that changed it in
  // place (clearing `error` once shown, forcing `state`) changed it for all of them.
  test('the status from getStatus cannot be changed under the next reader', async () => {
    const { client } = make()
    const before = client.getStatus()
    try {
      ;(before as { state: string }).state = 'error'
    } catch {}
    expect(client.getStatus().state).toBe('loading')
    await client.start()
    const status = client.getStatus()
    try {
      ;(status as { state: string }).state = 'error'
      ;(status as { source: string }).source = 'none'
    } catch {}
    expect(client.getStatus()).toMatchObject({ state: 'ready', source: 'network' })
  })

  test("the context in snapshot() or getContext() is the client's own: changing it (stripping PII before logging) changes nothing the client sends", async () => {
    const { client } = make()
    await client.start()
    const snapshot = client.snapshot()
    try {
      snapshot.context.targetingKey = 'mallory'
      delete snapshot.context.plan
      ;(client.getContext() as Record<string, unknown>).targetingKey = 'mallory'
    } catch {
      // frozen
    }
    await client.refresh()
    expect(server.requests.at(-1)!.body.context).toEqual({ targetingKey: 'alice', plan: 'pro' })
    expect(client.getContext()).toEqual({ targetingKey: 'alice', plan: 'pro' })
  })

  test('the context object the app passed stays the app’s: the client neither freezes it nor follows later changes to it', async () => {
    const context = { targetingKey: 'alice', plan: 'pro' }
    const { client } = make({ context })
    await client.start()
    context.plan = 'free' // the app reuses its object; it has not called setContext yet
    expect(Object.isFrozen(context)).toBe(false)
    await client.refresh()
    expect(server.requests.at(-1)!.body.context).toEqual({ targetingKey: 'alice', plan: 'pro' })
    await client.setContext(context)
    expect(server.requests.at(-1)!.body.context).toEqual({ targetingKey: 'alice', plan: 'free' })
  })

  // structuredClone throws for a Proxy (a Vue `reactive` user, a MobX observable) and for an object
  // holding a function (a class with an arrow-function field). Such a context was kept as the
  // app's live object: when the app logged bob in by changing it while alice's request was out,
  // alice's answer was written to the cache under bob's targetingKey and shown to bob as his own.
  const uncloneable = {
    'a Proxy (Vue reactive, MobX)': () => new Proxy({ targetingKey: 'alice', plan: 'pro' }, {}),
    'an object with a function member': () => ({ targetingKey: 'alice', plan: 'pro', describe: () => 'a user model' }),
  }
  for (const [what, makeContext] of Object.entries(uncloneable))
    test(`a context structuredClone refuses (${what}) is still the client's own copy: alice's answer is never cached or shown as bob's`, async () => {
      const storage = createMemoryStorage()
      server.always(delayed(flags([{ key: 'shop', value: 'alice-shop' }]), 100))
      const user = makeContext()
      const { client } = make({ context: user, storage })
      const started = client.start()
      await server.waitForRequests(1)
      user.targetingKey = 'bob' // the app logs bob in by changing its user object, then tells the client
      await started
      expect(server.requests[0].body.context.targetingKey).toBe('alice')
      server.always({ status: 503, raw: '' })
      // Bob's first attempt fails and nothing of his is cached: nothing of alice's may show.
      expect((await client.setContext(user)).state).toBe('error')
      expect(client.getDetails('shop', 'DEFAULT')).toMatchObject({ value: 'DEFAULT', source: 'default' })
      // Nor after a reload as bob, from the persisted cache.
      const reloaded = make({ context: { targetingKey: 'bob', plan: 'pro' }, storage }).client
      await reloaded.start()
      expect(reloaded.getDetails('shop', 'DEFAULT')).toMatchObject({ value: 'DEFAULT', source: 'default' })
    })
})

describe('a 304 to a request that named no snapshot confirms nothing (§2.1)', () => {
  test('a bootstrap ETag too long to send is not sent, and a 304 anyway does not pass the bootstrap off as fresh network values', async () => {
    const bootstrap: Bootstrap = { context: { targetingKey: 'alice', plan: 'pro' }, flags: [{ key: 'shop', value: 'boot-shop' }], etag: `"${'x'.repeat(2000)}"`, fetchedAt: Date.now() }
    server.always({ status: 304, raw: '' })
    const { client } = make({ bootstrap, storage: 'memory' })
    const status = await client.start()
    expect(server.requests.at(-1)!.headers['if-none-match']).toBeUndefined()
    expect(status).toMatchObject({ state: 'stale', source: 'bootstrap', error: { code: 'INVALID_RESPONSE' } })
    expect(client.getDetails('shop', 'none')).toMatchObject({ value: 'boot-shop', source: 'bootstrap', stale: true })
  })
})

describe('Status.source is the source of the data most recently applied (§3)', () => {
  test('a cache entry older than the bootstrap on every flag applies nothing: the status still says bootstrap', async () => {
    const storageName = uniqueStorageName('source-lost-cache')
    server.always(flags([{ key: 'shop', value: 'cached-shop' }]))
    const seed = make({ storageName }).client
    await seed.start()
    await seed.close()
    const bootstrap: Bootstrap = { context: { targetingKey: 'alice', plan: 'pro' }, flags: [{ key: 'shop', value: 'boot-shop' }], fetchedAt: Date.now() + 60_000 }
    server.always({ status: 503, raw: '' })
    const { client } = make({ storageName, bootstrap })
    const status = await client.start()
    expect(client.getDetails('shop', 'none')).toMatchObject({ value: 'boot-shop', source: 'bootstrap', stale: true })
    expect(status).toMatchObject({ state: 'stale', source: 'bootstrap' })
  })
})
