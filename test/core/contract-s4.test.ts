// CONTRACT §3's error codes and §4 (applying a response), each sentence checked through the public
// API against a real OFREP server on 127.0.0.1 that the test scripts: every failure's code with the
// held values kept, bootstrap problems, one notification per response, a switch's old answer
// discarded, no retry of its own after a 400 or 401; and §5's bootstrap/cache precedence.
import { expect, test, vi } from 'vitest'
import { createFaultServer, delayed, flags } from '../support/faultServer'
import { throughTimeout, uniqueStorageName } from '../support/clock'
import { etagServer, useContractSuite } from '../support/contractClient'

const suite = useContractSuite()
const { make } = suite

// §3 error codes, each reached through a real answer, with the HTTP status where there is one;
// held values kept through every one of them (§4).
test.each([
  ['a 503', { status: 503, raw: '' }, { code: 'HTTP', httpStatus: 503 }, 'stale'],
  ['a 404', { status: 404, raw: '' }, { code: 'HTTP', httpStatus: 404 }, 'stale'],
  ['a 401', { status: 401, raw: '' }, { code: 'UNAUTHORIZED', httpStatus: 401 }, 'error'],
  ['a 403', { status: 403, raw: '' }, { code: 'UNAUTHORIZED', httpStatus: 403 }, 'error'],
  ['a 400', { status: 400, body: { errorCode: 'INVALID_CONTEXT' } }, { code: 'INVALID_CONTEXT', httpStatus: 400 }, 'error'],
  ['an HTML portal', { status: 200, raw: '<html>login</html>', headers: { 'Content-Type': 'text/html' } }, { code: 'INVALID_RESPONSE' }, 'stale'],
  // §2.1: "200 with non-JSON content type": refused on the type alone, even when the body would parse.
  ['a flags body sent as text/plain', { status: 200, raw: JSON.stringify({ flags: [{ key: 'kill', value: false }] }), headers: { 'Content-Type': 'text/plain' } }, { code: 'INVALID_RESPONSE' }, 'stale'],
  ['a JSON {}', { status: 200, body: {} }, { code: 'INVALID_RESPONSE' }, 'stale'],
  ['a JSON []', { status: 200, body: [] }, { code: 'INVALID_RESPONSE' }, 'stale'],
  ['zero flags', { status: 200, body: { flags: [] } }, { code: 'EMPTY_RESPONSE' }, 'stale'],
  ['a reset connection', 'reset', { code: 'NETWORK' }, 'stale'],
] as const)('%s shows its error code and keeps the held values', async (_name, reply, error, state) => {
  suite.server = await createFaultServer(flags([{ key: 'kill', value: true, variant: 'on' }]))
  const { client, clock } = make()
  await client.start()
  const { lastSuccessAt } = client.getStatus()
  clock.advance(5_000)
  // A captive portal or a broken proxy may well send an ETag of its own.
  suite.server.always(typeof reply == 'object' ? ({ ...reply, headers: { ETag: '"junk"', ...(reply as { headers?: object }).headers } } as never) : reply)
  const status = await client.refresh()
  expect(status).toMatchObject({ state, error })
  // §3 Status.lastSuccessAt: "last 200 or 304; a failure leaves it unchanged" (a 200 refused too).
  expect(status.lastSuccessAt).toBe(lastSuccessAt)
  expect(client.getDetails('kill', false)).toMatchObject({ value: true, variant: 'on', source: 'network', stale: true })
  // §2.1: If-None-Match only for the snapshot held; a refused answer's ETag names nothing held.
  suite.server.always((request) => (request.headers['if-none-match'] === '"junk"' ? { status: 304, headers: { ETag: '"junk"' } } : flags([{ key: 'kill', value: false }])))
  await client.refresh()
  expect(suite.server.requests.at(-1)!.headers['if-none-match']).not.toBe('"junk"')
  expect(client.getDetails('kill', true)).toMatchObject({ value: false, source: 'network', stale: false })
})

test('a timeout shows TIMEOUT and keeps the held values', async () => {
  suite.server = await createFaultServer(flags([{ key: 'kill', value: true }]))
  const { client, clock } = make()
  await client.start()
  suite.server.always('hang')
  const status = await throughTimeout(clock, suite.server, 300, () => client.refresh())
  expect(status).toMatchObject({ state: 'stale', error: { code: 'TIMEOUT' } })
  expect(client.getDetails('kill', false)).toMatchObject({ value: true, stale: true })
})

// §3: "Bootstrap problems are logged and shown as Status.error until the first success."
test.each([
  ['BOOTSTRAP_INVALID', { flags: 'nope' }],
  ['BOOTSTRAP_CONTEXT_MISMATCH', { context: { targetingKey: 'mallory' }, flags: [{ key: 'a', value: 1 }], fetchedAt: 1 }],
])('%s is logged, shown before start and through a failed attempt, and cleared by the first success', async (code, bootstrap) => {
  suite.server = await createFaultServer({ status: 503, raw: '' })
  const { client, logger } = make({ bootstrap: bootstrap as never })
  expect(client.getStatus().error).toMatchObject({ code })
  expect(logger.warnings.concat(logger.errors).join('\n')).toMatch(/\[holdfast\]/)
  await client.start()
  expect(client.getStatus().error).toMatchObject({ code })
  // The mismatched bootstrap's values are not shown.
  expect(client.getValue('a', 0)).toBe(0)
  suite.server.always(flags([{ key: 'a', value: 5 }]))
  const status = await client.refresh()
  expect(status).toMatchObject({ state: 'ready', source: 'network' })
  expect(status.error).toBeUndefined()
  // Gone for good: a later failure shows its own code.
  suite.server.always({ status: 503, raw: '' })
  expect((await client.refresh()).error).toMatchObject({ code: 'HTTP', httpStatus: 503 })
})

// §4: listeners told only when their flag's details changed; one response, one notification each.
test('one response notifies each listener at most once; an identical 200 or a 304 notifies no flag listener', async () => {
  suite.server = await createFaultServer(flags([{ key: 'a', value: 1 }, { key: 'b', value: 1 }, { key: 'c', value: 1 }], '"v1"'))
  const { client } = make()
  await client.start()
  const told = { a: 0, b: 0, c: 0, any: 0 }
  client.subscribeFlag('a', () => told.a++)
  client.subscribeFlag('b', () => told.b++)
  client.subscribeFlag('c', () => told.c++)
  client.subscribe(() => told.any++)

  // Identical 200 (no ETag sent back) and then a 304.
  suite.server.always(flags([{ key: 'a', value: 1 }, { key: 'b', value: 1 }, { key: 'c', value: 1 }]))
  await client.refresh()
  suite.server.always(etagServer([{ key: 'a', value: 1 }, { key: 'b', value: 1 }, { key: 'c', value: 1 }], '"v3"'))
  await client.refresh()
  await client.refresh()
  expect(suite.server.requests.at(-1)!.headers['if-none-match']).toBe('"v3"')
  expect([told.a, told.b, told.c]).toEqual([0, 0, 0])

  // One response changing a and b (value and variant/metadata at once): each told once, c not.
  told.any = 0
  suite.server.always(flags([{ key: 'a', value: 2, variant: 'two', metadata: { m: 1 } }, { key: 'b', value: 2, reason: 'TARGETING_MATCH' }, { key: 'c', value: 1 }]))
  await client.refresh()
  expect([told.a, told.b, told.c]).toEqual([1, 1, 0])
  expect(told.any).toBeLessThanOrEqual(1)
  expect(told.any).toBe(1)

  // A failure marks every flag stale: each told once; the next failure changes nothing.
  told.any = 0
  suite.server.always({ status: 503, raw: '' })
  await client.refresh()
  expect([told.a, told.b, told.c]).toEqual([2, 2, 1])
  expect(told.any).toBe(1)
  await client.refresh()
  expect([told.a, told.b, told.c]).toEqual([2, 2, 1])
})

// §4: a context switch aborts the old request; a response for an old context is discarded.
test("a slow answer for the previous user never lands on the new user's values", async () => {
  suite.server = await createFaultServer((request) =>
    request.body?.context?.targetingKey === 'alice' ? delayed(flags([{ key: 'who', value: 'alice' }]), 300) : flags([{ key: 'who', value: 'bob' }]),
  )
  const { client } = make({ requestTimeoutMs: 5000 })
  const started = client.start()
  await suite.server.waitForRequests(1)
  const switched = client.setContext({ targetingKey: 'bob' })
  await Promise.all([started, switched])
  // Alice's request was given up (aborted), not merely outrun: her answer, sent at 300 ms, finds no reader.
  await vi.waitFor(() => expect(suite.server!.requests[0]).toMatchObject({ abandoned: true }), { timeout: 5000 })
  expect(client.getDetails('who', '')).toMatchObject({ value: 'bob', source: 'network' })
  expect(client.getStatus()).toMatchObject({ state: 'ready' })
})

// §4: after a 400 the client does not retry that context by itself; refresh() still tries.
test('after a 400 no request goes out by itself, through any time; refresh() still asks', async () => {
  suite.server = await createFaultServer({ status: 400, body: { errorCode: 'INVALID_CONTEXT' } })
  let asked = 0
  const { client, clock } = make({ refreshIntervalMs: 30_000, fetch: (...args: Parameters<typeof fetch>) => (asked++, fetch(...args)) })
  expect(await client.start()).toMatchObject({ state: 'error', error: { code: 'INVALID_CONTEXT', httpStatus: 400 } })
  const before = suite.server.requests.length
  expect(asked).toBe(before)
  // The polls fall due and pass: fetch is not even called (counted once the microtasks they start have run).
  for (let i = 0; i < 20; i++) clock.advance(60_000)
  await new Promise((r) => setImmediate(r))
  expect(asked).toBe(before)
  suite.server.always(flags([{ key: 'a', value: 1 }]))
  expect(await client.refresh()).toMatchObject({ state: 'ready' })
  expect(suite.server.requests.length).toBe(before + 1)
})

// §4: after 401/403 it waits for the next trigger rather than looping.
test('after a 401 no retry loop: nothing until the next poll', async () => {
  suite.server = await createFaultServer({ status: 401, raw: '' })
  const { client, clock } = make({ refreshIntervalMs: 60_000 })
  await client.start()
  const before = suite.server.requests.length
  // Only the poll waits on the clock, a minute out: no retry timer of the 401's own.
  expect(clock.pending()).toEqual([60_000])
  clock.advance(59_000)
  expect(clock.pending()).toEqual([60_000])
  expect(suite.server.requests.length).toBe(before)
  clock.advance(2_000)
  await suite.server.waitForRequests(before + 1)
})

// §5 precedence: the newer of bootstrap and cache (by updatedAt) wins, in both orders.
test.each([
  ['the bootstrap is newer', 1, 'from-bootstrap'],
  ['the cache is newer', -1, 'from-cache'],
] as const)('with the network down, %s: its value is served', async (_name, sign, expected) => {
  const storageName = uniqueStorageName('s5-precedence')
  suite.server = await createFaultServer(flags([{ key: 'v', value: 'from-cache' }]))
  const seed = make({ storage: undefined, storageName })
  await seed.client.start()
  const cachedAt = seed.client.getDetails('v', '').updatedAt!
  await seed.client.close()
  suite.server.always({ status: 503, raw: '' })
  const bootstrap = { context: { targetingKey: 'alice' }, flags: [{ key: 'v', value: 'from-bootstrap' }], fetchedAt: cachedAt + sign * 60_000 }
  const { client } = make({ storage: undefined, storageName, bootstrap })
  await client.start()
  expect(client.getDetails('v', '')).toMatchObject({ value: expected, source: expected === 'from-cache' ? 'cache' : 'bootstrap', stale: true })
})

// §4: "A failure entry FLAG_NOT_FOUND removes that flag" and "A response with failure entries is
// partial: absent flags are kept, marked stale". FLAG_NOT_FOUND is a failure entry: such an answer
// removes the flag it names and keeps the ones it leaves out.
test('an answer whose only failure entry is FLAG_NOT_FOUND removes that flag and keeps, stale, the held flags it leaves out', async () => {
  suite.server = await createFaultServer(flags([{ key: 'kill', value: true }, { key: 'gone', value: 1 }, { key: 'unlisted', value: 'kept' }]))
  const { client } = make()
  await client.start()
  suite.server.always(flags([{ key: 'kill', value: true }, { key: 'gone', errorCode: 'FLAG_NOT_FOUND' }]))
  expect(await client.refresh()).toMatchObject({ state: 'ready' })
  expect(client.getDetails('kill', false)).toMatchObject({ value: true, source: 'network', stale: false })
  expect(client.getDetails('gone', 0)).toMatchObject({ value: 0, source: 'default', errorCode: 'FLAG_NOT_FOUND' })
  expect(client.getDetails('unlisted', '')).toMatchObject({ value: 'kept', source: 'network', stale: true })
})

// §5: "Only values from successful responses are written." A bootstrap is not an answer this page
// received: the next visit with the server down finds nothing cached, not the bootstrap as 'cache'.
test("a bootstrap's values are not written to the cache: the next visit in an outage shows the defaults", async () => {
  const storageName = uniqueStorageName('s5-written')
  suite.server = await createFaultServer({ status: 503, raw: '' })
  const bootstrap = { context: { targetingKey: 'alice' }, flags: [{ key: 'v', value: 'from-bootstrap' }], fetchedAt: Date.now() }
  const first = make({ storage: undefined, storageName, bootstrap })
  expect(await first.client.start()).toMatchObject({ state: 'stale', source: 'bootstrap' })
  await first.client.close()
  const { client } = make({ storage: undefined, storageName })
  expect(await client.start()).toMatchObject({ state: 'error', source: 'none', storage: 'indexeddb' })
  expect(client.getDetails('v', 'dflt')).toMatchObject({ value: 'dflt', source: 'default' })
})
