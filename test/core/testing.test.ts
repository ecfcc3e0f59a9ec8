// `createTestClient` from `@holdfast/core/testing`, as an app's test uses it: values set and
// changed synchronously, the notifications the real client sends, the real client's evaluation
// rules, and a record of what the app logged. No network, storage or timers are involved.
import fc from 'fast-check'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createClient, type FlagClient, type JsonValue } from '@holdfast/core'
import { createTestClient } from '@holdfast/core/testing'
import { createTestLogger } from '../support/clock'

afterEach(() => {
  vi.restoreAllMocks()
})

describe('values', () => {
  it('serves the flags it was given, and defaults with FLAG_NOT_FOUND for the rest', () => {
    const client = createTestClient({ flags: { 'new-checkout': true, 'banner-config': { text: 'Sale' }, 'button-text': 'Buy', limit: 3 } })
    expect(client.getGate('new-checkout')).toBe(true)
    expect(client.getConfig('banner-config', { text: 'Welcome' })).toEqual({ text: 'Sale' })
    expect(client.getValue('button-text', 'Go')).toBe('Buy')
    expect(client.getValue('limit', 0)).toBe(3)
    expect(client.getDetails('new-checkout', false)).toMatchObject({ value: true, source: 'network', stale: false })
    expect(client.getDetails('missing', 'd')).toEqual({ key: 'missing', value: 'd', source: 'default', errorCode: 'FLAG_NOT_FOUND', stale: false })
    expect(client.getStatus()).toMatchObject({ state: 'ready', source: 'network', storage: 'memory' })
  })

  it('checks types against the default exactly as the real client does (property)', () => {
    const json = fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<JsonValue>
    const defaults = fc.oneof(fc.boolean(), fc.string(), fc.integer(), fc.constant({}), fc.constant([]), fc.constant(null), fc.dictionary(fc.string(), fc.integer()))
    fc.assert(
      fc.property(fc.dictionary(fc.string({ minLength: 1 }), json, { maxKeys: 5 }), fc.string({ minLength: 1 }), defaults, (flags, probe, fallback) => {
        const test = createTestClient({ flags })
        const real: FlagClient = createClient({
          url: 'http://127.0.0.1:9',
          context: { targetingKey: 'u' },
          storage: 'memory',
          logger: createTestLogger(),
          bootstrap: { context: { targetingKey: 'u' }, fetchedAt: 1, flags: Object.entries(flags).map(([key, value]) => ({ key, value })) },
        })
        for (const key of [...Object.keys(flags), probe]) {
          const a = test.getDetails(key, fallback)
          const b = real.getDetails(key, fallback)
          expect({ value: a.value, errorCode: a.errorCode }).toEqual({ value: b.value, errorCode: b.errorCode })
          expect(test.getGate(key, true)).toEqual(real.getGate(key, true))
          expect(test.getConfig(key, { d: 1 })).toEqual(real.getConfig(key, { d: 1 }))
        }
        void real.close()
      }),
      { numRuns: 150 },
    )
  })

  // The real client freezes what it hands out (one details object per flag and default, one
  // status, shared by every reader): a component that changes them in place throws in production,
  // so it must throw in its tests too rather than pass them.
  it('hands out frozen details and status, as the real client does', () => {
    const client = createTestClient({ flags: { plan: 'pro' } })
    expect(Object.isFrozen(client.getDetails('plan', ''))).toBe(true)
    expect(Object.isFrozen(client.getDetails('missing', ''))).toBe(true)
    expect(Object.isFrozen(client.getStatus())).toBe(true)
    client.setStatus('stale')
    expect(Object.isFrozen(client.getStatus())).toBe(true)
    expect(Object.isFrozen(createTestClient({ status: 'error' }).getStatus())).toBe(true)
  })

  it('treats null as "the caller\'s default", and __proto__ as an ordinary key', () => {
    const client = createTestClient({ flags: JSON.parse('{"__proto__": true, "off": null}') })
    expect(client.getGate('__proto__')).toBe(true)
    expect(client.getDetails('off', 7)).toMatchObject({ value: 7, source: 'network' })
    expect(client.getDetails('off', 7).errorCode).toBeUndefined()
  })

  it('refuses values a server could never send (a test bug), naming the flag', () => {
    expect(() => createTestClient({ flags: { when: new Date() as never } })).toThrow(/"when" is not JSON/)
    expect(() => createTestClient({ flags: { n: Number.NaN } })).toThrow(/"n" is not JSON/)
    expect(() => createTestClient({ flags: [] as never })).toThrow(/`flags` must be an object/)
    const client = createTestClient()
    expect(() => client.set('f', (() => 1) as never)).toThrow(/"f" is not JSON/)
  })
})

describe('changes are synchronous and notify like the real client', () => {
  it('set tells only that flag\'s listeners, once; an identical set tells no one', () => {
    const client = createTestClient({ flags: { a: 1, b: 2 } })
    const onA = vi.fn()
    const onB = vi.fn()
    const onAny = vi.fn()
    client.subscribeFlag('a', onA)
    client.subscribeFlag('b', onB)
    client.subscribe(onAny)

    client.set('a', 10)
    expect(client.getValue('a', 0)).toBe(10)
    expect([onA.mock.calls.length, onB.mock.calls.length, onAny.mock.calls.length]).toEqual([1, 0, 1])

    const before = client.getDetails('a', 0)
    client.set('a', 10)
    expect([onA.mock.calls.length, onAny.mock.calls.length]).toEqual([1, 1])
    expect(client.getDetails('a', 0)).toBe(before) // the same object: useSyncExternalStore sees no change

    client.set('a', 10, { variant: 'ten' })
    expect(onA).toHaveBeenCalledTimes(2)
    expect(client.getDetails('a', 0)).toMatchObject({ value: 10, variant: 'ten' })
  })

  it('setFlags replaces the whole set; remove takes one flag away', () => {
    const client = createTestClient({ flags: { a: 1, b: 2 } })
    const onA = vi.fn()
    const onB = vi.fn()
    const onC = vi.fn()
    client.subscribeFlag('a', onA)
    client.subscribeFlag('b', onB)
    client.subscribeFlag('c', onC)
    client.setFlags({ a: 1, c: 3 })
    expect([onA.mock.calls.length, onB.mock.calls.length, onC.mock.calls.length]).toEqual([0, 1, 1])
    expect(client.getDetails('b', 0)).toMatchObject({ value: 0, errorCode: 'FLAG_NOT_FOUND' })
    client.remove('c')
    expect(onC).toHaveBeenCalledTimes(2)
    expect(client.getValue('c', 0)).toBe(0)
    expect(client.snapshot().flags.map((f) => [f.key, f.value])).toEqual([['a', 1]])
  })

  it('setStatus("stale") marks every flag stale with an error, as a failed attempt does; "ready" clears it', () => {
    const client = createTestClient({ flags: { a: true } })
    const onA = vi.fn()
    const onAny = vi.fn()
    client.subscribeFlag('a', onA)
    client.subscribe(onAny)
    const statusBefore = client.getStatus()
    expect(client.getStatus()).toBe(statusBefore) // a stable snapshot

    client.setStatus('stale')
    expect(client.getStatus()).toMatchObject({ state: 'stale', error: { code: 'NETWORK' } })
    expect(client.getDetails('a', false)).toMatchObject({ value: true, stale: true })
    expect([onA.mock.calls.length, onAny.mock.calls.length]).toEqual([1, 1])

    client.setStatus({ state: 'stale', error: { code: 'HTTP', message: '503', httpStatus: 503 } })
    expect(client.getStatus().error).toEqual({ code: 'HTTP', message: '503', httpStatus: 503 })
    expect(onA).toHaveBeenCalledTimes(1) // the flag did not change again

    client.setStatus('ready')
    expect(client.getStatus().error).toBeUndefined()
    expect(client.getDetails('a', false).stale).toBe(false)
    expect(onA).toHaveBeenCalledTimes(2)
  })

  it('starts in the status it was given', () => {
    const client = createTestClient({ flags: { a: true }, status: 'error', source: 'cache' })
    expect(client.getStatus()).toMatchObject({ state: 'error', source: 'cache', error: { code: 'NETWORK' } })
    expect(client.getDetails('a', false)).toMatchObject({ value: true, source: 'cache', stale: true })
  })

  it('observe() (what React hooks read through) keeps one observation until what its reader shows changes', () => {
    const client = createTestClient({ flags: { a: 1, b: 2 } })
    const whole = client.observe('a', 0)
    const first = whole.get()
    expect(first).toMatchObject({ result: { value: 1, source: 'network' }, exposable: true })
    expect(whole.get()).toBe(first)
    client.set('b', 3)
    expect(whole.get()).toBe(first)
    const onA = vi.fn()
    whole.subscribe(onA)
    client.set('a', 5)
    expect(onA).toHaveBeenCalledTimes(1)
    expect(whole.get().result.value).toBe(5)

    // A reader that selects only `stale` is handed the same object while the value it shows stays.
    const staleOnly = client.observe('a', 0, (d) => d.stale)
    const before = staleOnly.get()
    client.set('a', 5, { variant: 'five' })
    expect(staleOnly.get().result).toBe(false)
    client.setStatus('stale')
    expect(staleOnly.get().result).toBe(true)
    expect(client.observe('missing', 'd').get().details).toMatchObject({ value: 'd', errorCode: 'FLAG_NOT_FOUND' })
    expect(before.result).toBe(false)
  })

  it('a listener that unsubscribes is not called again', () => {
    const client = createTestClient({ flags: { a: 1 } })
    const onA = vi.fn()
    const off = client.subscribeFlag('a', onA)
    off()
    client.set('a', 2)
    expect(onA).not.toHaveBeenCalled()
  })
})

describe('what the app logged', () => {
  it('records logEvent calls (metadata copied, non-primitives left out) and counts them as queued until flush', async () => {
    const client = createTestClient({ context: { targetingKey: 'alice' } })
    const metadata: Record<string, unknown> = { plan: 'pro', nested: { no: 1 } }
    client.logEvent('checkout-clicked', { value: 42, metadata: metadata as never })
    metadata.plan = 'changed later'
    expect(client.loggedEvents).toEqual([{ name: 'checkout-clicked', value: 42, metadata: { plan: 'pro' }, targetingKey: 'alice' }])
    expect(client.getEventStats()).toMatchObject({ queued: 1, sent: 0, dropped: 0, retries: 0 })
    await client.flush()
    expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 1, dropped: 0, retries: 0 })
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    client.logEvent('')
    expect(client.loggedEvents).toHaveLength(1)
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('[holdfast]'))
  })

  it('records a custom value as the real client sends it: NaN, ±Infinity, a function or an object left out with a warning naming the event', () => {
    const client = createTestClient({ context: { targetingKey: 'alice' } })
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    for (const value of [NaN, Infinity, -Infinity, () => 1, { a: 1 }]) client.logEvent('odd', { value: value as never })
    client.logEvent('fine', { value: 'x' })
    client.logEvent('flag', { value: true as never })
    expect(client.loggedEvents).toEqual([
      ...Array.from({ length: 5 }, () => ({ name: 'odd', targetingKey: 'alice' })),
      { name: 'fine', value: 'x', targetingKey: 'alice' },
      { name: 'flag', value: true, targetingKey: 'alice' },
    ])
    expect(warn.mock.calls.map(([m]) => String(m)).filter((m) => m.includes('"odd"'))).toHaveLength(5)
    expect(warn).toHaveBeenCalledTimes(5)
  })

  it('never throws from logEvent, whatever plain JS passes: null options or metadata, a throwing getter, a revoked Proxy (as the real client)', () => {
    const client = createTestClient({ context: { targetingKey: 'alice' } })
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const { proxy, revoke } = Proxy.revocable({ plan: 'pro' }, {})
    revoke()
    const throwing = Object.defineProperty({}, 'value', {
      get() {
        throw new Error('boom')
      },
    })
    expect(() => {
      client.logEvent('no-options', null as never)
      client.logEvent('null-metadata', { metadata: null as never })
      client.logEvent('getter', throwing as never)
      client.logEvent('revoked', { metadata: proxy as never })
    }).not.toThrow()
    // The real client: null options are none, null metadata an empty copy; options that throw when
    // read ignore the event, and metadata that throws when copied drops it, each with a warning.
    expect(client.loggedEvents).toEqual([
      { name: 'no-options', targetingKey: 'alice' },
      { name: 'null-metadata', metadata: {}, targetingKey: 'alice' },
    ])
    expect(warn.mock.calls.map(([m]) => String(m))).toEqual([expect.stringContaining('"getter"'), expect.stringContaining('"revoked"')])
  })

  it('records one exposure per (user, flag, value, variant), none for defaults or hooks\' exposure: false', async () => {
    const client = createTestClient({ flags: { a: true, s: 'x' } })
    client.getGate('a')
    client.getGate('a')
    client.getGate('missing')
    client.getGate('s') // TYPE_MISMATCH: the default, not an exposure
    client.getDetails('a', false, { exposure: false })
    expect(client.exposures).toEqual([{ key: 'a', value: true, targetingKey: 'test-user' }])
    client.set('a', false, { variant: 'off' })
    client.getGate('a')
    await client.setContext({ targetingKey: 'bob' })
    client.logExposure(client.getDetails('a', true, { exposure: false }))
    expect(client.getContext()).toEqual({ targetingKey: 'bob' })
    expect(client.exposures.slice(1)).toEqual([
      { key: 'a', value: false, variant: 'off', targetingKey: 'test-user' },
      { key: 'a', value: false, variant: 'off', targetingKey: 'bob' },
    ])
  })

  it('a value the server\'s per-flag TYPE_MISMATCH left held is exposed, as the real client does; its own type mismatch is not', () => {
    const client = createTestClient({ context: { targetingKey: 'alice' } })
    client.set('beta', true, { errorCode: 'TYPE_MISMATCH', variant: 'on' })
    expect(client.getDetails('beta', false)).toMatchObject({ value: true, errorCode: 'TYPE_MISMATCH', stale: true })
    client.getGate('beta')
    client.getValue('beta', 'x') // the client's own mismatch: the default 'x' shown, not an exposure
    const observed = client.observe('beta', false).get()
    expect(client.isExposable(observed.details)).toBe(true)
    expect(client.isExposable(client.getDetails('beta', 'x', { exposure: false }))).toBe(false)
    expect(client.exposures).toEqual([{ key: 'beta', value: true, variant: 'on', targetingKey: 'alice' }])
  })

  it('start, refresh, close and clearCache resolve with no I/O', async () => {
    const fetchSpy = vi.spyOn(globalThis, 'fetch')
    const client = createTestClient({ flags: { a: true } })
    expect(await client.start()).toMatchObject({ state: 'ready' })
    expect(await client.refresh()).toMatchObject({ state: 'ready' })
    await client.clearCache()
    await client.close()
    expect(fetchSpy).not.toHaveBeenCalled()
  })
})

// CONTRACT §3 Details.stale "true when the latest attempt failed", as the real client (contract-s3).
describe('a flag not held while the status is failing', () => {
  it("reads as the caller's default marked stale, and its listeners hear the status flip both ways", () => {
    const client = createTestClient({ flags: { held: true } })
    let told = 0
    client.subscribeFlag('missing', () => told++)
    expect(client.getDetails('missing', 'd')).toMatchObject({ value: 'd', source: 'default', errorCode: 'FLAG_NOT_FOUND', stale: false })
    client.setStatus('stale')
    expect(client.getDetails('missing', 'd')).toMatchObject({ value: 'd', source: 'default', stale: true })
    expect(told).toBe(1)
    client.setStatus('error')
    expect(told).toBe(1)
    client.setStatus('ready')
    expect(client.getDetails('missing', 'd').stale).toBe(false)
    expect(told).toBe(2)
  })
})
