// CONTRACT §3's Details and States, each sentence checked through the public API against a real
// OFREP server on 127.0.0.1 that the test scripts: updatedAt, stale (a partial answer, a fallback,
// a caller's default while attempts fail), loading, ready and error. Failures, notifications and
// retries (§3's error codes, §4) are in contract-s4.test.ts.
import { expect, test } from 'vitest'
import { createFaultServer, flags } from '../support/faultServer'
import { etagServer, useContractSuite } from '../support/contractClient'

const suite = useContractSuite()
const { make } = suite

// §3 Details.updatedAt: "first received; an identical re-confirmation does not move it".
test('updatedAt stays put through an identical 200 and through a 304; a changed flag is dated when the change came', async () => {
  suite.server = await createFaultServer(flags([{ key: 'a', value: 1, variant: 'one' }, { key: 'b', value: 'x' }]))
  const { client, clock } = make()
  await client.start()
  const first = client.getDetails('a', 0).updatedAt!
  expect(first).toBeLessThanOrEqual(clock.now())

  clock.advance(60_000)
  await client.refresh()
  expect(client.getDetails('a', 0)).toMatchObject({ value: 1, source: 'network', stale: false, updatedAt: first })
  // Through an outage and back: the same content, re-confirmed, is no news either.
  suite.server.always({ status: 503, raw: '' })
  await client.refresh()
  suite.server.always(flags([{ key: 'a', value: 1, variant: 'one' }, { key: 'b', value: 'x' }]))
  clock.advance(60_000)
  await client.refresh()
  expect(client.getDetails('a', 0)).toMatchObject({ value: 1, source: 'network', stale: false, updatedAt: first })

  suite.server.always(etagServer([{ key: 'a', value: 1, variant: 'one' }, { key: 'b', value: 'y' }], '"v2"'))
  clock.advance(60_000)
  await client.refresh()
  const changedAt = clock.now()
  expect(client.getDetails('a', 0).updatedAt).toBe(first)
  expect(client.getDetails('b', '').updatedAt).toBeGreaterThan(first)
  expect(client.getDetails('b', '').updatedAt).toBeLessThanOrEqual(changedAt)
  const bAt = client.getDetails('b', '').updatedAt

  // An outage, then a 304 for the snapshot held.
  suite.server.always({ status: 503, raw: '' })
  await client.refresh()
  expect(client.getDetails('a', 0)).toMatchObject({ stale: true, updatedAt: first })
  suite.server.always(etagServer([{ key: 'a', value: 1, variant: 'one' }, { key: 'b', value: 'y' }], '"v2"'))
  clock.advance(60_000)
  expect(await client.refresh()).toMatchObject({ state: 'ready', source: 'network' })
  expect(suite.server.requests.at(-1)!.headers['if-none-match']).toBe('"v2"')
  expect(client.getDetails('a', 0)).toMatchObject({ updatedAt: first, stale: false, source: 'network' })
  expect(client.getDetails('b', '')).toMatchObject({ updatedAt: bAt, stale: false, source: 'network' })
})

// §3 Details.updatedAt covers the content: value, variant, reason, metadata. A change of any one is news.
test.each([
  ['the reason', { reason: 'TARGETING_MATCH' }],
  ['the metadata', { metadata: { owner: 'growth' } }],
  ['the variant', { variant: 'b' }],
])('a change of %s alone dates the flag anew and tells its listener', async (_name, change) => {
  suite.server = await createFaultServer(flags([{ key: 'kill', value: true, variant: 'a', reason: 'STATIC' }]))
  const { client, clock } = make()
  await client.start()
  const first = client.getDetails('kill', false).updatedAt!
  let told = 0
  client.subscribeFlag('kill', () => told++)
  clock.advance(5_000)
  suite.server.always(flags([{ key: 'kill', value: true, variant: 'a', reason: 'STATIC', ...change }]))
  await client.refresh()
  expect(client.getDetails('kill', false)).toMatchObject({ value: true, ...change })
  expect(client.getDetails('kill', false).updatedAt).toBeGreaterThan(first)
  expect(told).toBe(1)
})

// A per-flag error keeps the value (§4); the same content confirmed afterwards is no news.
test('a flag kept through a per-flag error and then confirmed with the same content keeps its first updatedAt', async () => {
  suite.server = await createFaultServer(flags([{ key: 'kill', value: true }, { key: 'x', value: 1 }]))
  const { client, clock } = make()
  await client.start()
  const first = client.getDetails('kill', false).updatedAt!
  clock.advance(5_000)
  suite.server.always(flags([{ key: 'kill', errorCode: 'GENERAL' }, { key: 'x', value: 1 }]))
  await client.refresh()
  expect(client.getDetails('kill', false)).toMatchObject({ value: true, stale: true, errorCode: 'GENERAL', updatedAt: first })
  clock.advance(5_000)
  suite.server.always(flags([{ key: 'kill', value: true }, { key: 'x', value: 1 }]))
  await client.refresh()
  expect(client.getDetails('kill', false)).toMatchObject({ value: true, stale: false, updatedAt: first })
  expect(client.getDetails('kill', false).errorCode).toBeUndefined()
})

// §3 Details.stale: "true when the latest attempt failed, or did not confirm this flag".
test('a flag a partial response did not confirm is stale; the flags it confirmed are not', async () => {
  suite.server = await createFaultServer(flags([{ key: 'a', value: 1 }, { key: 'b', value: 2 }]))
  const { client } = make()
  await client.start()
  suite.server.always(flags([{ key: 'a', value: 10 }, { key: 'c', errorCode: 'GENERAL' }]))
  expect(await client.refresh()).toMatchObject({ source: 'network' })
  expect(client.getDetails('a', 0)).toMatchObject({ value: 10, source: 'network', stale: false })
  expect(client.getDetails('b', 0)).toMatchObject({ value: 2, source: 'network', stale: true })
  // No previous value: the caller's default with the entry's code.
  expect(client.getDetails('c', 'dflt')).toMatchObject({ value: 'dflt', errorCode: 'GENERAL' })
  // The next clean answer confirms b again.
  suite.server.always(flags([{ key: 'a', value: 10 }, { key: 'b', value: 2 }]))
  await client.refresh()
  expect(client.getDetails('b', 0)).toMatchObject({ value: 2, stale: false })
})

// §3 Details.stale: "a `fallback` value is stale until a response confirms it"; §5: once a
// success is applied for the current context, fallback values are no longer used.
test('a fallback value is stale until a response confirms it; a fallback flag the answer lacks is no longer served', async () => {
  suite.server = await createFaultServer({ status: 503, raw: '' })
  const fallback = { context: { targetingKey: 'anyone' }, flags: [{ key: 'a', value: 'fb-a' }, { key: 'b', value: 'fb-b' }], fetchedAt: 1 }
  const { client } = make({ fallback })
  expect(client.getDetails('a', '')).toMatchObject({ value: 'fb-a', source: 'fallback', stale: true })
  await client.start()
  expect(client.getDetails('a', '')).toMatchObject({ value: 'fb-a', source: 'fallback', stale: true })
  suite.server.always(flags([{ key: 'a', value: 'fb-a' }]))
  expect(await client.refresh()).toMatchObject({ state: 'ready', source: 'network' })
  expect(client.getDetails('a', '')).toMatchObject({ value: 'fb-a', source: 'network', stale: false })
  expect(client.getDetails('b', 'dflt')).toMatchObject({ value: 'dflt', source: 'default', errorCode: 'FLAG_NOT_FOUND' })
  // A later failure does not bring the fallback back for this context.
  suite.server.always({ status: 503, raw: '' })
  expect(await client.refresh()).toMatchObject({ state: 'stale' })
  expect(client.getDetails('b', 'dflt')).toMatchObject({ value: 'dflt', source: 'default' })
})

// §3 States: loading = no values from any source yet (fallback alone does not count) and the
// first attempt pending; ready = values in hand and none finished yet.
test('state is loading with only fallback values while the first attempt is pending, ready with a bootstrap', async () => {
  suite.server = await createFaultServer('hang')
  const fallback = { context: { targetingKey: 'anyone' }, flags: [{ key: 'a', value: 1 }], fetchedAt: 1 }
  const withFallback = make({ fallback })
  void withFallback.client.start()
  await suite.server.waitForRequests(1)
  expect(withFallback.client.getStatus().state).toBe('loading')
  expect(withFallback.client.getValue('a', 0)).toBe(1)

  const bootstrap = { context: { targetingKey: 'alice' }, flags: [{ key: 'a', value: 2 }], fetchedAt: Date.now() }
  const withBootstrap = make({ bootstrap, fallback })
  void withBootstrap.client.start()
  await suite.server.waitForRequests(2)
  expect(withBootstrap.client.getStatus()).toMatchObject({ state: 'ready', source: 'bootstrap' })
})

// §3 States: error = no values at all after a failed attempt (fallback values are not "in hand").
test('a first attempt failing with only fallback values is state error, not stale', async () => {
  suite.server = await createFaultServer({ status: 503, raw: '' })
  const fallback = { context: { targetingKey: 'anyone' }, flags: [{ key: 'a', value: 1 }], fetchedAt: 1 }
  const { client } = make({ fallback })
  expect(await client.start()).toMatchObject({ state: 'error', error: { code: 'HTTP', httpStatus: 503 } })
  expect(client.getValue('a', 0)).toBe(1)
})

// §3 Details.stale: "true when the latest attempt failed". A caller's default shown because the
// attempt failed (a first visit during an outage; a switch whose first attempt failed) is the
// least confirmed value of all: it says so, and its listeners hear the change both ways.
test("a caller's default served because the latest attempt failed is stale; a clean answer without the flag makes it fresh", async () => {
  suite.server = await createFaultServer({ status: 503, raw: '' })
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
  suite.server.always(flags([{ key: 'other', value: 1 }]))
  expect(await client.refresh()).toMatchObject({ state: 'ready' })
  expect(client.getDetails('kill', false)).toMatchObject({ value: false, source: 'default', errorCode: 'FLAG_NOT_FOUND', stale: false })
  expect(told).toBe(2)
  // Then a switch to a user whose first attempt fails: their defaults are stale too.
  suite.server.always({ status: 503, raw: '' })
  expect(await client.setContext({ targetingKey: 'bob' })).toMatchObject({ state: 'error' })
  expect(client.getDetails('other', 0)).toMatchObject({ value: 0, source: 'default', stale: true })
  expect(client.getDetails('kill', false)).toMatchObject({ value: false, source: 'default', stale: true })
})

// §3 Details.stale: "true when ... [the latest attempt] did not confirm this flag"; §4: a partial
// answer (failure entries) keeps the flags it lacks, stale. It did not confirm a flag it lacks
// missing either: the caller's default for a flag never held is stale then, as a held one would be,
// unless the answer said FLAG_NOT_FOUND for it. Its listeners hear each real change, once.
test("a flag never held that a partial answer lacks is the caller's default, stale; one it says FLAG_NOT_FOUND for, or a clean answer lacks, is not", async () => {
  suite.server = await createFaultServer(flags([{ key: 'a', value: 1 }]))
  const { client } = make()
  await client.start()
  let told = 0
  let goneTold = 0
  client.subscribeFlag('promo', () => told++)
  client.subscribeFlag('gone', () => goneTold++)
  expect(client.getDetails('promo', 'none')).toEqual({ key: 'promo', value: 'none', source: 'default', errorCode: 'FLAG_NOT_FOUND', stale: false })

  suite.server.always(flags([{ key: 'a', value: 1 }, { key: 'b', errorCode: 'GENERAL' }, { key: 'gone', errorCode: 'FLAG_NOT_FOUND' }]))
  expect(await client.refresh()).toMatchObject({ state: 'ready' })
  expect(client.getDetails('promo', 'none')).toEqual({ key: 'promo', value: 'none', source: 'default', errorCode: 'FLAG_NOT_FOUND', stale: true })
  expect(client.getDetails('gone', 'none')).toMatchObject({ source: 'default', errorCode: 'FLAG_NOT_FOUND', stale: false })
  expect(client.getDetails('a', 0)).toMatchObject({ value: 1, stale: false })
  expect(told).toBe(1)
  // The same partial answer again: no change, nobody told.
  await client.refresh()
  expect(told).toBe(1)

  // A clean answer without it: not found, and confirmed so.
  suite.server.always(flags([{ key: 'a', value: 1 }]))
  expect(await client.refresh()).toMatchObject({ state: 'ready' })
  expect(client.getDetails('promo', 'none')).toEqual({ key: 'promo', value: 'none', source: 'default', errorCode: 'FLAG_NOT_FOUND', stale: false })
  expect(told).toBe(2)
  await client.refresh()
  expect(told).toBe(2)
  // Not found, and confirmed so, all along: its listener never heard a thing.
  expect(goneTold).toBe(0)
})

// §9: a relay's answer saying stale (UPSTREAM_STALE) confirms nothing fresh: a flag it lacks is the
// caller's default, stale, until a fresh answer lacks it too. A 401 (credentials) is a failed attempt.
test("a flag a relay's stale answer lacks is stale; a fresh answer without it makes it fresh; a 401 makes it stale again", async () => {
  const relay = (stale: boolean) => ({ status: 200, body: { flags: [{ key: 'kill', value: true }], metadata: { holdfast: { source: 'data-dir', fetchedAt: Date.now(), stale } } } })
  suite.server = await createFaultServer(relay(true))
  const { client } = make()
  expect(await client.start()).toMatchObject({ state: 'stale', error: { code: 'UPSTREAM_STALE' } })
  expect(client.getDetails('promo', 'none')).toMatchObject({ value: 'none', source: 'default', errorCode: 'FLAG_NOT_FOUND', stale: true })
  suite.server.always(relay(false))
  expect(await client.refresh()).toMatchObject({ state: 'ready' })
  expect(client.getDetails('promo', 'none')).toMatchObject({ source: 'default', errorCode: 'FLAG_NOT_FOUND', stale: false })
  suite.server.always({ status: 401, raw: '' })
  expect(await client.refresh()).toMatchObject({ state: 'error', error: { code: 'UNAUTHORIZED' } })
  expect(client.getDetails('promo', 'none')).toMatchObject({ source: 'default', errorCode: 'FLAG_NOT_FOUND', stale: true })
})

// §3 Status.source: "the source of the data most recently applied"; 'none' with nothing applied.
test("Status.source names what was applied last: none, fallback, bootstrap, then network", async () => {
  suite.server = await createFaultServer(flags([{ key: 'a', value: 'net' }]))
  const fallback = { context: { targetingKey: 'anyone' }, flags: [{ key: 'a', value: 'fb' }], fetchedAt: 1 }
  expect(make().client.getStatus()).toMatchObject({ state: 'loading', source: 'none' })
  expect(make({ fallback }).client.getStatus()).toMatchObject({ state: 'loading', source: 'fallback' })
  const { client } = make({ fallback, bootstrap: { context: { targetingKey: 'alice' }, flags: [{ key: 'a', value: 'boot' }], fetchedAt: Date.now() - 1000 } })
  expect(client.getStatus()).toMatchObject({ state: 'ready', source: 'bootstrap' })
  expect(await client.start()).toMatchObject({ state: 'ready', source: 'network' })
})
