// CONTRACT §3 (Details, States, error codes) and §4 (applying a response), each sentence checked
// through the public API against a real OFREP server on 127.0.0.1 that the test scripts.
import { afterEach, expect, test } from 'vitest'
import { createClient, type ClientOptions, type FlagClient } from '@holdfast/core'
import { createFaultServer, delayed, flags, type FaultServer } from '../support/faultServer'
import { createManualClock, createTestLogger, throughTimeout, uniqueStorageName } from '../support/clock'

let server: FaultServer | undefined
const clients: FlagClient[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await server?.close()
  server = undefined
})

function make(options: Partial<ClientOptions> = {}) {
  const clock = createManualClock()
  const logger = createTestLogger()
  const client = createClient({
    url: server!.url,
    context: { targetingKey: 'alice' },
    storage: 'memory',
    clock,
    logger,
    requestTimeoutMs: 300,
    liveUpdates: false,
    ...options,
  } as ClientOptions)
  clients.push(client)
  return { client, clock, logger }
}

/** A server that answers 304 when If-None-Match names `etag`, else 200 with `entries` and `etag`. */
function etagServer(entries: unknown[], etag: string) {
  return (request: { headers: Record<string, unknown> }) =>
    request.headers['if-none-match'] === etag ? { status: 304, headers: { ETag: etag } } : flags(entries, etag)
}

// §3 Details.updatedAt: "first received; an identical re-confirmation does not move it".
test('updatedAt stays put through an identical 200 and through a 304; a changed flag is dated when the change came', async () => {
  server = await createFaultServer(flags([{ key: 'a', value: 1, variant: 'one' }, { key: 'b', value: 'x' }]))
  const { client, clock } = make()
  await client.start()
  const first = client.getDetails('a', 0).updatedAt!
  expect(first).toBeLessThanOrEqual(clock.now())

  clock.advance(60_000)
  await client.refresh()
  expect(client.getDetails('a', 0)).toMatchObject({ value: 1, source: 'network', stale: false, updatedAt: first })
  // Through an outage and back: the same content, re-confirmed, is no news either.
  server.always({ status: 503, raw: '' })
  await client.refresh()
  server.always(flags([{ key: 'a', value: 1, variant: 'one' }, { key: 'b', value: 'x' }]))
  clock.advance(60_000)
  await client.refresh()
  expect(client.getDetails('a', 0)).toMatchObject({ value: 1, source: 'network', stale: false, updatedAt: first })

  server.always(etagServer([{ key: 'a', value: 1, variant: 'one' }, { key: 'b', value: 'y' }], '"v2"'))
  clock.advance(60_000)
  await client.refresh()
  const changedAt = clock.now()
  expect(client.getDetails('a', 0).updatedAt).toBe(first)
  expect(client.getDetails('b', '').updatedAt).toBeGreaterThan(first)
  expect(client.getDetails('b', '').updatedAt).toBeLessThanOrEqual(changedAt)
  const bAt = client.getDetails('b', '').updatedAt

  // An outage, then a 304 for the snapshot held.
  server.always({ status: 503, raw: '' })
  await client.refresh()
  expect(client.getDetails('a', 0)).toMatchObject({ stale: true, updatedAt: first })
  server.always(etagServer([{ key: 'a', value: 1, variant: 'one' }, { key: 'b', value: 'y' }], '"v2"'))
  clock.advance(60_000)
  expect(await client.refresh()).toMatchObject({ state: 'ready', source: 'network' })
  expect(server.requests.at(-1)!.headers['if-none-match']).toBe('"v2"')
  expect(client.getDetails('a', 0)).toMatchObject({ updatedAt: first, stale: false, source: 'network' })
  expect(client.getDetails('b', '')).toMatchObject({ updatedAt: bAt, stale: false, source: 'network' })
})

// §3 Details.updatedAt covers the content: value, variant, reason, metadata. A change of any one is news.
test.each([
  ['the reason', { reason: 'TARGETING_MATCH' }],
  ['the metadata', { metadata: { owner: 'growth' } }],
  ['the variant', { variant: 'b' }],
])('a change of %s alone dates the flag anew and tells its listener', async (_name, change) => {
  server = await createFaultServer(flags([{ key: 'kill', value: true, variant: 'a', reason: 'STATIC' }]))
  const { client, clock } = make()
  await client.start()
  const first = client.getDetails('kill', false).updatedAt!
  let told = 0
  client.subscribeFlag('kill', () => told++)
  clock.advance(5_000)
  server.always(flags([{ key: 'kill', value: true, variant: 'a', reason: 'STATIC', ...change }]))
  await client.refresh()
  expect(client.getDetails('kill', false)).toMatchObject({ value: true, ...change })
  expect(client.getDetails('kill', false).updatedAt).toBeGreaterThan(first)
  expect(told).toBe(1)
})

// A per-flag error keeps the value (§4); the same content confirmed afterwards is no news.
test('a flag kept through a per-flag error and then confirmed with the same content keeps its first updatedAt', async () => {
  server = await createFaultServer(flags([{ key: 'kill', value: true }, { key: 'x', value: 1 }]))
  const { client, clock } = make()
  await client.start()
  const first = client.getDetails('kill', false).updatedAt!
  clock.advance(5_000)
  server.always(flags([{ key: 'kill', errorCode: 'GENERAL' }, { key: 'x', value: 1 }]))
  await client.refresh()
  expect(client.getDetails('kill', false)).toMatchObject({ value: true, stale: true, errorCode: 'GENERAL', updatedAt: first })
  clock.advance(5_000)
  server.always(flags([{ key: 'kill', value: true }, { key: 'x', value: 1 }]))
  await client.refresh()
  expect(client.getDetails('kill', false)).toMatchObject({ value: true, stale: false, updatedAt: first })
  expect(client.getDetails('kill', false).errorCode).toBeUndefined()
})

// §3 Details.stale: "true when the latest attempt failed, or did not confirm this flag".
test('a flag a partial response did not confirm is stale; the flags it confirmed are not', async () => {
  server = await createFaultServer(flags([{ key: 'a', value: 1 }, { key: 'b', value: 2 }]))
  const { client } = make()
  await client.start()
  server.always(flags([{ key: 'a', value: 10 }, { key: 'c', errorCode: 'GENERAL' }]))
  expect(await client.refresh()).toMatchObject({ source: 'network' })
  expect(client.getDetails('a', 0)).toMatchObject({ value: 10, source: 'network', stale: false })
  expect(client.getDetails('b', 0)).toMatchObject({ value: 2, source: 'network', stale: true })
  // No previous value: the caller's default with the entry's code.
  expect(client.getDetails('c', 'dflt')).toMatchObject({ value: 'dflt', errorCode: 'GENERAL' })
  // The next clean answer confirms b again.
  server.always(flags([{ key: 'a', value: 10 }, { key: 'b', value: 2 }]))
  await client.refresh()
  expect(client.getDetails('b', 0)).toMatchObject({ value: 2, stale: false })
})

// §3 Details.stale: "a `fallback` value is stale until a response confirms it"; §5: once a
// success is applied for the current context, fallback values are no longer used.
test('a fallback value is stale until a response confirms it; a fallback flag the answer lacks is no longer served', async () => {
  server = await createFaultServer({ status: 503, raw: '' })
  const fallback = { context: { targetingKey: 'anyone' }, flags: [{ key: 'a', value: 'fb-a' }, { key: 'b', value: 'fb-b' }], fetchedAt: 1 }
  const { client } = make({ fallback })
  expect(client.getDetails('a', '')).toMatchObject({ value: 'fb-a', source: 'fallback', stale: true })
  await client.start()
  expect(client.getDetails('a', '')).toMatchObject({ value: 'fb-a', source: 'fallback', stale: true })
  server.always(flags([{ key: 'a', value: 'fb-a' }]))
  expect(await client.refresh()).toMatchObject({ state: 'ready', source: 'network' })
  expect(client.getDetails('a', '')).toMatchObject({ value: 'fb-a', source: 'network', stale: false })
  expect(client.getDetails('b', 'dflt')).toMatchObject({ value: 'dflt', source: 'default', errorCode: 'FLAG_NOT_FOUND' })
  // A later failure does not bring the fallback back for this context.
  server.always({ status: 503, raw: '' })
  expect(await client.refresh()).toMatchObject({ state: 'stale' })
  expect(client.getDetails('b', 'dflt')).toMatchObject({ value: 'dflt', source: 'default' })
})

// §3 States: loading = no values from any source yet (fallback alone does not count) and the
// first attempt pending; ready = values in hand and none finished yet.
test('state is loading with only fallback values while the first attempt is pending, ready with a bootstrap', async () => {
  server = await createFaultServer('hang')
  const fallback = { context: { targetingKey: 'anyone' }, flags: [{ key: 'a', value: 1 }], fetchedAt: 1 }
  const withFallback = make({ fallback })
  void withFallback.client.start()
  await server.waitForRequests(1)
  expect(withFallback.client.getStatus().state).toBe('loading')
  expect(withFallback.client.getValue('a', 0)).toBe(1)

  const bootstrap = { context: { targetingKey: 'alice' }, flags: [{ key: 'a', value: 2 }], fetchedAt: Date.now() }
  const withBootstrap = make({ bootstrap, fallback })
  void withBootstrap.client.start()
  await server.waitForRequests(2)
  expect(withBootstrap.client.getStatus()).toMatchObject({ state: 'ready', source: 'bootstrap' })
})

// §3 States: error = no values at all after a failed attempt (fallback values are not "in hand").
test('a first attempt failing with only fallback values is state error, not stale', async () => {
  server = await createFaultServer({ status: 503, raw: '' })
  const fallback = { context: { targetingKey: 'anyone' }, flags: [{ key: 'a', value: 1 }], fetchedAt: 1 }
  const { client } = make({ fallback })
  expect(await client.start()).toMatchObject({ state: 'error', error: { code: 'HTTP', httpStatus: 503 } })
  expect(client.getValue('a', 0)).toBe(1)
})

// §3 error codes, each reached through a real answer, with the HTTP status where there is one;
// held values kept through every one of them (§4).
test.each([
  ['a 503', { status: 503, raw: '' }, { code: 'HTTP', httpStatus: 503 }, 'stale'],
  ['a 404', { status: 404, raw: '' }, { code: 'HTTP', httpStatus: 404 }, 'stale'],
  ['a 401', { status: 401, raw: '' }, { code: 'UNAUTHORIZED', httpStatus: 401 }, 'error'],
  ['a 403', { status: 403, raw: '' }, { code: 'UNAUTHORIZED', httpStatus: 403 }, 'error'],
  ['a 400', { status: 400, body: { errorCode: 'INVALID_CONTEXT' } }, { code: 'INVALID_CONTEXT', httpStatus: 400 }, 'error'],
  ['an HTML portal', { status: 200, raw: '<html>login</html>', headers: { 'Content-Type': 'text/html' } }, { code: 'INVALID_RESPONSE' }, 'stale'],
  ['a JSON {}', { status: 200, body: {} }, { code: 'INVALID_RESPONSE' }, 'stale'],
  ['a JSON []', { status: 200, body: [] }, { code: 'INVALID_RESPONSE' }, 'stale'],
  ['zero flags', { status: 200, body: { flags: [] } }, { code: 'EMPTY_RESPONSE' }, 'stale'],
  ['a reset connection', 'reset', { code: 'NETWORK' }, 'stale'],
] as const)('%s shows its error code and keeps the held values', async (_name, reply, error, state) => {
  server = await createFaultServer(flags([{ key: 'kill', value: true, variant: 'on' }]))
  const { client, clock } = make()
  await client.start()
  const { lastSuccessAt } = client.getStatus()
  clock.advance(5_000)
  // A captive portal or a broken proxy may well send an ETag of its own.
  server.always(typeof reply == 'object' ? ({ ...reply, headers: { ETag: '"junk"', ...(reply as { headers?: object }).headers } } as never) : reply)
  const status = await client.refresh()
  expect(status).toMatchObject({ state, error })
  // §3 Status.lastSuccessAt: "last 200 or 304; a failure leaves it unchanged" (a 200 refused too).
  expect(status.lastSuccessAt).toBe(lastSuccessAt)
  expect(client.getDetails('kill', false)).toMatchObject({ value: true, variant: 'on', source: 'network', stale: true })
  // §2.1: If-None-Match only for the snapshot held; a refused answer's ETag names nothing held.
  server.always((request) => (request.headers['if-none-match'] === '"junk"' ? { status: 304, headers: { ETag: '"junk"' } } : flags([{ key: 'kill', value: false }])))
  await client.refresh()
  expect(server.requests.at(-1)!.headers['if-none-match']).not.toBe('"junk"')
  expect(client.getDetails('kill', true)).toMatchObject({ value: false, source: 'network', stale: false })
})

test('a timeout shows TIMEOUT and keeps the held values', async () => {
  server = await createFaultServer(flags([{ key: 'kill', value: true }]))
  const { client, clock } = make()
  await client.start()
  server.always('hang')
  const status = await throughTimeout(clock, server, 300, () => client.refresh())
  expect(status).toMatchObject({ state: 'stale', error: { code: 'TIMEOUT' } })
  expect(client.getDetails('kill', false)).toMatchObject({ value: true, stale: true })
})

// §3: "Bootstrap problems are logged and shown as Status.error until the first success."
test.each([
  ['BOOTSTRAP_INVALID', { flags: 'nope' }],
  ['BOOTSTRAP_CONTEXT_MISMATCH', { context: { targetingKey: 'mallory' }, flags: [{ key: 'a', value: 1 }], fetchedAt: 1 }],
])('%s is logged, shown before start and through a failed attempt, and cleared by the first success', async (code, bootstrap) => {
  server = await createFaultServer({ status: 503, raw: '' })
  const { client, logger } = make({ bootstrap: bootstrap as never })
  expect(client.getStatus().error).toMatchObject({ code })
  expect(logger.warnings.concat(logger.errors).join('\n')).toMatch(/\[holdfast\]/)
  await client.start()
  expect(client.getStatus().error).toMatchObject({ code })
  // The mismatched bootstrap's values are not shown.
  expect(client.getValue('a', 0)).toBe(0)
  server.always(flags([{ key: 'a', value: 5 }]))
  const status = await client.refresh()
  expect(status).toMatchObject({ state: 'ready', source: 'network' })
  expect(status.error).toBeUndefined()
  // Gone for good: a later failure shows its own code.
  server.always({ status: 503, raw: '' })
  expect((await client.refresh()).error).toMatchObject({ code: 'HTTP', httpStatus: 503 })
})

// §4: listeners told only when their flag's details changed; one response, one notification each.
test('one response notifies each listener at most once; an identical 200 or a 304 notifies no flag listener', async () => {
  server = await createFaultServer(flags([{ key: 'a', value: 1 }, { key: 'b', value: 1 }, { key: 'c', value: 1 }], '"v1"'))
  const { client } = make()
  await client.start()
  const told = { a: 0, b: 0, c: 0, any: 0 }
  client.subscribeFlag('a', () => told.a++)
  client.subscribeFlag('b', () => told.b++)
  client.subscribeFlag('c', () => told.c++)
  client.subscribe(() => told.any++)

  // Identical 200 (no ETag sent back) and then a 304.
  server.always(flags([{ key: 'a', value: 1 }, { key: 'b', value: 1 }, { key: 'c', value: 1 }]))
  await client.refresh()
  server.always(etagServer([{ key: 'a', value: 1 }, { key: 'b', value: 1 }, { key: 'c', value: 1 }], '"v3"'))
  await client.refresh()
  await client.refresh()
  expect(server.requests.at(-1)!.headers['if-none-match']).toBe('"v3"')
  expect([told.a, told.b, told.c]).toEqual([0, 0, 0])

  // One response changing a and b (value and variant/metadata at once): each told once, c not.
  told.any = 0
  server.always(flags([{ key: 'a', value: 2, variant: 'two', metadata: { m: 1 } }, { key: 'b', value: 2, reason: 'TARGETING_MATCH' }, { key: 'c', value: 1 }]))
  await client.refresh()
  expect([told.a, told.b, told.c]).toEqual([1, 1, 0])
  expect(told.any).toBeLessThanOrEqual(1)
  expect(told.any).toBe(1)

  // A failure marks every flag stale: each told once; the next failure changes nothing.
  told.any = 0
  server.always({ status: 503, raw: '' })
  await client.refresh()
  expect([told.a, told.b, told.c]).toEqual([2, 2, 1])
  expect(told.any).toBe(1)
  await client.refresh()
  expect([told.a, told.b, told.c]).toEqual([2, 2, 1])
})

// §4: a context switch aborts the old request; a response for an old context is discarded.
test("a slow answer for the previous user never lands on the new user's values", async () => {
  server = await createFaultServer((request) =>
    request.body?.context?.targetingKey === 'alice' ? delayed(flags([{ key: 'who', value: 'alice' }]), 300) : flags([{ key: 'who', value: 'bob' }]),
  )
  const { client } = make({ requestTimeoutMs: 5000 })
  const started = client.start()
  await server.waitForRequests(1)
  const switched = client.setContext({ targetingKey: 'bob' })
  await Promise.all([started, switched])
  await new Promise((r) => setTimeout(r, 400))
  expect(client.getDetails('who', '')).toMatchObject({ value: 'bob', source: 'network' })
  expect(client.getStatus()).toMatchObject({ state: 'ready' })
})

// §4: after a 400 the client does not retry that context by itself; refresh() still tries.
test('after a 400 no request goes out by itself, through any time; refresh() still asks', async () => {
  server = await createFaultServer({ status: 400, body: { errorCode: 'INVALID_CONTEXT' } })
  const { client, clock } = make({ refreshIntervalMs: 30_000 })
  expect(await client.start()).toMatchObject({ state: 'error', error: { code: 'INVALID_CONTEXT', httpStatus: 400 } })
  const before = server.requests.length
  for (let i = 0; i < 20; i++) clock.advance(60_000)
  await new Promise((r) => setTimeout(r, 50))
  expect(server.requests.length).toBe(before)
  server.always(flags([{ key: 'a', value: 1 }]))
  expect(await client.refresh()).toMatchObject({ state: 'ready' })
  expect(server.requests.length).toBe(before + 1)
})

// §4: after 401/403 it waits for the next trigger rather than looping.
test('after a 401 no retry loop: nothing until the next poll', async () => {
  server = await createFaultServer({ status: 401, raw: '' })
  const { client, clock } = make({ refreshIntervalMs: 60_000 })
  await client.start()
  const before = server.requests.length
  clock.advance(59_000)
  await new Promise((r) => setTimeout(r, 50))
  expect(server.requests.length).toBe(before)
  clock.advance(2_000)
  await server.waitForRequests(before + 1)
})

// §5 precedence: the newer of bootstrap and cache (by updatedAt) wins, in both orders.
test.each([
  ['the bootstrap is newer', 1, 'from-bootstrap'],
  ['the cache is newer', -1, 'from-cache'],
] as const)('with the network down, %s: its value is served', async (_name, sign, expected) => {
  const storageName = uniqueStorageName('s5-precedence')
  server = await createFaultServer(flags([{ key: 'v', value: 'from-cache' }]))
  const seed = make({ storage: undefined, storageName })
  await seed.client.start()
  const cachedAt = seed.client.getDetails('v', '').updatedAt!
  await seed.client.close()
  server.always({ status: 503, raw: '' })
  const bootstrap = { context: { targetingKey: 'alice' }, flags: [{ key: 'v', value: 'from-bootstrap' }], fetchedAt: cachedAt + sign * 60_000 }
  const { client } = make({ storage: undefined, storageName, bootstrap })
  await client.start()
  expect(client.getDetails('v', '')).toMatchObject({ value: expected, source: expected === 'from-cache' ? 'cache' : 'bootstrap', stale: true })
})

// §3 Details.stale: "true when the latest attempt failed". A caller's default shown because the
// attempt failed (a first visit during an outage; a switch whose first attempt failed) is the
// least confirmed value of all: it says so, and its listeners hear the change both ways.
test("a caller's default served because the latest attempt failed is stale; a clean answer without the flag makes it fresh", async () => {
  server = await createFaultServer({ status: 503, raw: '' })
  const { client } = make()
  let told = 0
  client.subscribeFlag('kill', () => told++)
  expect(client.getDetails('kill', false)).toMatchObject({ value: false, source: 'default', errorCode: 'FLAG_NOT_FOUND' })
  expect(await client.start()).toMatchObject({ state: 'error' })
  expect(client.getDetails('kill', false)).toMatchObject({ value: false, source: 'default', errorCode: 'FLAG_NOT_FOUND', stale: true })
  expect(told).toBe(1)
  // The same failure again is no change.
  await client.refresh()
  expect(told).toBe(1)
  // The server answers, without this flag: not found, and confirmed so.
  server.always(flags([{ key: 'other', value: 1 }]))
  expect(await client.refresh()).toMatchObject({ state: 'ready' })
  expect(client.getDetails('kill', false)).toMatchObject({ value: false, source: 'default', errorCode: 'FLAG_NOT_FOUND', stale: false })
  expect(told).toBe(2)
  // Then a switch to a user whose first attempt fails: their defaults are stale too.
  server.always({ status: 503, raw: '' })
  expect(await client.setContext({ targetingKey: 'bob' })).toMatchObject({ state: 'error' })
  expect(client.getDetails('other', 0)).toMatchObject({ value: 0, source: 'default', stale: true })
  expect(client.getDetails('kill', false)).toMatchObject({ value: false, source: 'default', stale: true })
})
