// Responses that are valid but not whole: per-flag errors, FLAG_NOT_FOUND, entries without
// values or optional fields, unknown reasons and codes, unreadable entries, odd flag keys.
import { afterEach, beforeEach, expect, test } from 'vitest'
import { createClient, type FlagClient } from '@holdfast/core'
import { createFaultServer, flags, type FaultServer } from '../support/faultServer'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'

let server: FaultServer
let client: FlagClient
beforeEach(async () => {
  server = await createFaultServer(flags([
    { key: 'a', value: true, variant: 'on', reason: 'STATIC' },
    { key: 'b', value: 'blue', variant: 'blue' },
    { key: 'c', value: 1 },
  ]))
  client = createClient({ url: server.url, context: { targetingKey: 'u' }, storageName: uniqueStorageName('partial'), logger: createTestLogger(), clock: createManualClock() })
  await client.start()
})
afterEach(async () => {
  await client.close()
  await server.close()
})

test('per-flag errors keep the last known good value, stale, with the code; absent flags are kept stale', async () => {
  server.always(flags([{ key: 'a', errorCode: 'PARSE_ERROR', errorDetails: 'bad rule' }, { key: 'b', value: 'green' }]))
  const status = await client.refresh()
  expect(status.state).toBe('ready')
  expect(client.getDetails('a', false)).toMatchObject({ value: true, variant: 'on', stale: true, errorCode: 'PARSE_ERROR', source: 'network' })
  expect(client.getDetails('b', '')).toMatchObject({ value: 'green', stale: false })
  expect(client.getDetails('c', 0)).toMatchObject({ value: 1, stale: true })
})

test('a per-flag error with no previous value gives the default with that code', async () => {
  server.always(flags([{ key: 'a', value: true }, { key: 'b', value: 'blue' }, { key: 'c', value: 1 }, { key: 'new', errorCode: 'TARGETING_KEY_MISSING' }]))
  await client.refresh()
  expect(client.getDetails('new', 'dflt')).toMatchObject({ value: 'dflt', errorCode: 'TARGETING_KEY_MISSING', source: 'default' })
})

test('FLAG_NOT_FOUND in bulk removes that flag', async () => {
  server.always(flags([{ key: 'a', errorCode: 'FLAG_NOT_FOUND' }, { key: 'b', value: 'blue' }, { key: 'c', value: 1 }]))
  await client.refresh()
  expect(client.getDetails('a', false)).toMatchObject({ value: false, source: 'default', errorCode: 'FLAG_NOT_FOUND' })
  expect(client.getValue('b', '')).toBe('blue')
})

test('a clean response removes flags it no longer lists', async () => {
  server.always(flags([{ key: 'a', value: true }]))
  await client.refresh()
  expect(client.getDetails('b', 'x')).toMatchObject({ value: 'x', source: 'default' })
})

test('entries without value or optional fields are valid; unknown reasons and codes pass through', async () => {
  server.always(flags([
    { key: 'a' },
    { key: 'b', value: null, reason: 'SOMETHING_NEW' },
    { key: 'c', value: 2, reason: 'SPLIT', metadata: { owner: 'team-x', weight: 3, on: true } },
    { key: 'd', errorCode: 'VENDOR_SPECIFIC' },
  ]))
  await client.refresh()
  expect(client.getDetails('a', true)).toMatchObject({ value: true, source: 'network' })
  expect(client.getDetails('b', 'mine')).toMatchObject({ value: 'mine', reason: 'SOMETHING_NEW' })
  expect(client.getDetails('c', 0)).toMatchObject({ value: 2, reason: 'SPLIT', metadata: { owner: 'team-x', weight: 3, on: true } })
  expect(client.getDetails('d', 'x')).toMatchObject({ errorCode: 'VENDOR_SPECIFIC' })
})

test('an unreadable entry is skipped, not fatal, and makes the response partial', async () => {
  server.always(flags([{ value: 'no key' }, 42, null, { key: 7 }, { key: 'a', value: false }]))
  const status = await client.refresh()
  expect(status.state).toBe('ready')
  expect(client.getGate('a', true)).toBe(false)
  // Partial: flags it did not list are kept (stale), since one of the unreadable entries may be them.
  expect(client.getDetails('b', '')).toMatchObject({ value: 'blue', stale: true })
})

test('an answer whose entries cannot be read (a vendor naming the key `flagKey`) says so in the log, once while it lasts', async () => {
  const logger = createTestLogger()
  const fresh = createClient({ url: server.url, context: { targetingKey: 'v' }, storage: 'memory', logger, clock: createManualClock() })
  // Before: every flag the caller's default, status ready, and not a word anywhere.
  server.always(flags([{ flagKey: 'a', value: true }, { flagKey: 'b', value: 'blue' }]))
  expect((await fresh.start()).state).toBe('ready')
  expect(fresh.getDetails('a', false)).toMatchObject({ value: false, errorCode: 'FLAG_NOT_FOUND' })
  expect(logger.warnings.filter((w) => w.includes('2 unreadable flag entries'))).toHaveLength(1)
  await fresh.refresh()
  expect(logger.warnings.filter((w) => w.includes('unreadable flag entries'))).toHaveLength(1)
  await fresh.close()
})

// A flag listed twice in one answer (a vendor merging two projects, a relay bug): the last entry
// applies, as JSON.parse keeps the last of two equal object keys, and the answer is otherwise
// applied as any other. (A warning naming the key cost 73–81 B gzip up front, over the ~30 B such a
// rare server fault was worth: not logged.)
test('a key listed twice in one answer: the last entry applies', async () => {
  const fresh = createClient({ url: server.url, context: { targetingKey: 'w' }, storage: 'memory', logger: createTestLogger(), clock: createManualClock() })
  server.always(flags([{ key: 'kill', value: false }, { key: 'other', value: 1 }, { key: 'kill', value: true }]))
  expect((await fresh.start()).state).toBe('ready')
  expect(fresh.getDetails('kill', false)).toMatchObject({ value: true, source: 'network', stale: false })
  expect(fresh.getDetails('other', 0)).toMatchObject({ value: 1, source: 'network' })
  server.always(flags([{ key: 'kill', value: true }, { key: 'other', value: 1 }, { key: 'kill', value: false }]))
  await fresh.refresh()
  expect(fresh.getDetails('kill', true)).toMatchObject({ value: false, source: 'network' })
  await fresh.close()
})

test('fields of the wrong type are dropped, not fatal', async () => {
  server.always(flags([{ key: 'a', value: true, reason: 5, variant: {}, metadata: 'x' }, { key: 'b', value: 'blue' }, { key: 'c', value: 1 }]))
  await client.refresh()
  const d = client.getDetails('a', false)
  expect(d.value).toBe(true)
  expect(d.reason).toBeUndefined()
  expect(d.variant).toBeUndefined()
})

test('flags named __proto__ and constructor over the wire', async () => {
  server.always({ status: 200, raw: '{"flags":[{"key":"__proto__","value":true},{"key":"constructor","value":{"x":1}}]}', headers: { 'Content-Type': 'application/json' } })
  await client.refresh()
  expect(client.getGate('__proto__')).toBe(true)
  expect(client.getConfig('constructor')).toEqual({ x: 1 })
  expect(client.snapshot().flags.map((f) => f.key).sort()).toEqual(['__proto__', 'constructor'])
})

test('response metadata and extra top-level fields are tolerated', async () => {
  server.always({ status: 200, body: { flags: [{ key: 'a', value: true }], metadata: { version: 3 }, extra: [1] } })
  expect((await client.refresh()).state).toBe('ready')
})

test('one metadata entry that is not a string, number or boolean is dropped alone, not all the flag’s metadata', async () => {
  // Before: `{ owner, rules: {...} }` lost `owner` too (the whole metadata failed the check), so a
  // dashboard reading `metadata.owner` went blank because a vendor added one nested field.
  const raw = '{"flags":[{"key":"a","value":true,"metadata":{"owner":"team-x","rules":{"n":1},"list":[1],"none":null,"huge":1e400,"weight":3,"on":false}},{"key":"b","value":"blue"},{"key":"c","value":1}]}'
  server.always({ status: 200, raw, headers: { 'Content-Type': 'application/json' } })
  await client.refresh()
  expect(client.getDetails('a', false).metadata).toEqual({ owner: 'team-x', weight: 3, on: false })
  // Bootstrap input is read the same way.
  const other = createClient({
    url: server.url,
    context: { targetingKey: 'u' },
    bootstrap: { context: { targetingKey: 'u' }, flags: [{ key: 'x', value: 1, metadata: { owner: 'ssr', nested: { no: 1 } } as never }], fetchedAt: 1 },
    storage: 'memory',
    logger: createTestLogger(),
  })
  expect(other.getDetails('x', 0).metadata).toEqual({ owner: 'ssr' })
  await other.close()
})

// CONTRACT §4: "No failure of any kind (..., malformed body, ...) removes or changes a held value".
test('a failure entry whose errorCode is not a string (a numeric 404, an object) still keeps the last known good value (PARSE_ERROR)', async () => {
  // Before: the non-string errorCode was dropped as a field of the wrong type, which left
  // `{ key }`, a success with no value: `a` and `c` went to the caller's default, fresh.
  server.always(flags([{ key: 'a', errorCode: 404 }, { key: 'b', value: 'green' }, { key: 'c', errorCode: { code: 'GENERAL' } }] as never))
  await client.refresh()
  expect(client.getDetails('a', false)).toMatchObject({ value: true, variant: 'on', stale: true, errorCode: 'PARSE_ERROR', source: 'network' })
  expect(client.getDetails('c', 0)).toMatchObject({ value: 1, stale: true, errorCode: 'PARSE_ERROR' })
  expect(client.getValue('b', '')).toBe('green')
  // `errorCode: null` (a serializer's absent field) is no failure: the value is taken.
  server.always(flags([{ key: 'a', value: false, errorCode: null }, { key: 'b', value: 'green' }, { key: 'c', value: 2 }] as never))
  await client.refresh()
  expect(client.getDetails('a', true)).toMatchObject({ value: false, stale: false, source: 'network' })
  expect(client.getDetails('a', true).errorCode).toBeUndefined()
})

test('a value out of the double range (1e400 reads as Infinity) is a per-flag PARSE_ERROR: the last known good value stays', async () => {
  // Before: `c` became Infinity, which no JSON can carry: snapshot() (the SSR bootstrap) and the
  // cache read back `null`/nothing, so the next page served the caller's default instead.
  const raw = '{"flags":[{"key":"a","value":true},{"key":"b","value":"blue"},{"key":"c","value":1e400},{"key":"cfg","value":{"max":-1e400}}]}'
  server.always({ status: 200, raw, headers: { 'Content-Type': 'application/json' } })
  await client.refresh()
  expect(client.getDetails('c', 0)).toMatchObject({ value: 1, stale: true, errorCode: 'PARSE_ERROR', source: 'network' })
  expect(client.getDetails('cfg', { max: 5 })).toMatchObject({ value: { max: 5 }, errorCode: 'PARSE_ERROR', source: 'default' })
  expect(client.getValue('b', '')).toBe('blue')
  const snapshot = client.snapshot()
  expect(JSON.parse(JSON.stringify(snapshot))).toEqual(snapshot)
})

// A server that writes every optional field, empty (a Go or Java OFREP server, a serializer without
// `omitempty`): `errorCode: ""` says "no error", not "a failure with no code".
const allFields = { reason: 'STATIC', variant: '', errorCode: '', errorDetails: '', metadata: null }

test('a success entry that writes every optional field empty (errorCode "", metadata null) is applied as a success', async () => {
  // Before: every entry read as a failure with the code "": no flag ever updated (each kept its old
  // value, stale, errorCode ""), and a new flag gave the caller's default.
  server.always(flags([
    { key: 'a', value: false, ...allFields },
    { key: 'b', value: 'green', ...allFields, reason: '', flagMetadata: {} },
    { key: 'c', value: 2, ...allFields, metadata: {} },
    { key: 'new', value: { on: true }, ...allFields, metadata: [] },
  ] as never))
  const status = await client.refresh()
  expect(status.state).toBe('ready')
  expect(client.getDetails('a', true)).toMatchObject({ value: false, reason: 'STATIC', source: 'network', stale: false })
  expect(client.getValue('b', '')).toBe('green')
  expect(client.getValue('c', 0)).toBe(2)
  expect(client.getConfig('new', {})).toEqual({ on: true })
  for (const key of ['a', 'b', 'c', 'new']) expect(client.getDetails(key, null).errorCode).toBeUndefined()
  // A clean answer: flags it no longer lists go (an answer of "failures" kept them for ever).
  server.always(flags([{ key: 'a', value: true, ...allFields }]))
  await client.refresh()
  expect(client.getDetails('b', 'gone')).toMatchObject({ value: 'gone', source: 'default' })
})

test('an entry with errorCode "" and no value keeps the held value (PARSE_ERROR): a held value is never replaced by nothing', async () => {
  // Pinned decision: `errorCode: ""` with no value (absent or null) cannot be told from a failure
  // whose code a serializer emptied, so it is read as PARSE_ERROR, never as "use the caller's default".
  server.always(flags([
    { key: 'a', ...allFields },
    { key: 'b', value: null, ...allFields },
    { key: 'c', value: 3, ...allFields },
    { key: 'new', ...allFields },
  ] as never))
  await client.refresh()
  expect(client.getDetails('a', false)).toMatchObject({ value: true, stale: true, errorCode: 'PARSE_ERROR' })
  expect(client.getDetails('b', '')).toMatchObject({ value: 'blue', stale: true, errorCode: 'PARSE_ERROR' })
  expect(client.getDetails('c', 0)).toMatchObject({ value: 3, stale: false })
  expect(client.getDetails('new', 'dflt')).toMatchObject({ value: 'dflt', source: 'default', errorCode: 'PARSE_ERROR' })
  // Nor does an empty set with every optional field of the answer written empty (CONTRACT §4).
  server.always({ status: 200, body: { flags: [], metadata: null, eventStreams: null } })
  const status = await client.refresh()
  expect(status).toMatchObject({ state: 'stale', error: { code: 'EMPTY_RESPONSE' } })
  expect(client.getValue('c', 0)).toBe(3)
})

test('a metadata entry named __proto__ is an ordinary entry, over the wire and after a reload from the cache', async () => {
  // Before: `out[key] = v` with key `__proto__` set (or, for a string, silently failed to set) the
  // prototype of the copy, and the entry was gone from `details.metadata`.
  server.always({ status: 200, raw: '{"flags":[{"key":"a","value":true,"metadata":{"__proto__":"team-x","owner":"y"}}]}', headers: { 'Content-Type': 'application/json' } })
  await client.refresh()
  const metadata = client.getDetails('a', false).metadata!
  expect(Object.entries(metadata)).toEqual([['__proto__', 'team-x'], ['owner', 'y']])
  expect(Object.getPrototypeOf(metadata)).toBe(Object.prototype)
  // The next page, in an outage: the same metadata from the cache.
  const name = uniqueStorageName('partial-proto')
  const first = createClient({ url: server.url, context: { targetingKey: 'u' }, storageName: name, logger: createTestLogger(), clock: createManualClock() })
  await first.start()
  await first.close()
  server.always({ status: 500 })
  const next = createClient({ url: server.url, context: { targetingKey: 'u' }, storageName: name, logger: createTestLogger(), clock: createManualClock() })
  expect((await next.start()).source).toBe('cache')
  expect(Object.entries(next.getDetails('a', false).metadata!)).toEqual([['__proto__', 'team-x'], ['owner', 'y']])
  await next.close()
})
