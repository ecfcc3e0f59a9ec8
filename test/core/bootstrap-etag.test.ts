// CONTRACT §2.1, §4, §5: a bootstrap's ETag goes on the first request, and a 304 to it confirms the
// snapshot it names: a held flag that is not in that snapshot goes, "as absent from a clean
// response". A bootstrap rendered while the server answered `{"flags": []}` names an empty snapshot:
// its 304 removed every cached flag and said `ready`, where the same empty answer as a 200 is refused
// as EMPTY_RESPONSE ("an outage that answers [] must never look like every kill switch is off").
import { afterEach, expect, test } from 'vitest'
import { createClient, type Bootstrap, type FlagClient } from '@holdfast/core'
import { createFaultServer, flags, type FaultServer, type Reply } from '../support/faultServer'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'

let server: FaultServer | undefined
const clients: FlagClient[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await server?.close()
})

/** A server that answers `body` with `etag`, and 304 to a request naming `etag`. */
function snapshot(entries: unknown[], etag: string): Reply {
  return (request) => (request.headers['if-none-match'] === etag ? { status: 304, headers: { ETag: etag } } : flags(entries, etag))
}

function make(storageName: string, bootstrap?: Bootstrap) {
  const client = createClient({ url: server!.url, context: { targetingKey: 'alice' }, bootstrap, storageName, logger: createTestLogger(), clock: createManualClock() })
  clients.push(client)
  return client
}

/** Yesterday's visit: alice's values in the cache. */
async function seed(storageName: string, entries: unknown[] = [{ key: 'payments-kill-switch', value: true }, { key: 'banner', value: 'sale' }]) {
  server!.always(flags(entries, '"yesterday"'))
  const seeded = make(storageName)
  await seeded.start()
  await seeded.close()
}

test('a 304 to an empty bootstrap snapshot does not empty the cached values: EMPTY_RESPONSE, values kept', async () => {
  server = await createFaultServer()
  const storageName = uniqueStorageName('boot-etag-empty')
  await seed(storageName)
  // Today the flag server answers an empty set (and 304s to its ETag); the page was rendered from it.
  server.always(snapshot([], '"empty"'))
  const client = make(storageName, { context: { targetingKey: 'alice' }, flags: [], etag: '"empty"', fetchedAt: Date.now() + 1000 })
  const status = await client.start()
  expect(server.requests.at(-1)!.headers['if-none-match']).toBe('"empty"')
  // Before: both flags removed by the 304, state `ready` from the network.
  expect(client.getGate('payments-kill-switch', false)).toBe(true)
  expect(client.getDetails('banner', 'none')).toMatchObject({ value: 'sale', source: 'cache', stale: true })
  expect(status).toMatchObject({ state: 'stale', error: { code: 'EMPTY_RESPONSE' } })
})

test("a bootstrap's ETag is sent whatever its entries: with a FLAG_NOT_FOUND entry (as in OFREP's own example) too", async () => {
  server = await createFaultServer()
  const entries = [{ key: 'payments-kill-switch', value: false }, { key: 'non-existent-flag', errorCode: 'FLAG_NOT_FOUND' }]
  server.always(snapshot(entries, '"with-not-found"'))
  const client = make(uniqueStorageName('boot-etag-nf'), { context: { targetingKey: 'alice' }, flags: entries as Bootstrap['flags'], etag: '"with-not-found"', fetchedAt: Date.now() })
  expect(await client.start()).toMatchObject({ state: 'ready', source: 'network' })
  expect(server.requests[0].headers['if-none-match']).toBe('"with-not-found"')
  expect(client.getDetails('payments-kill-switch', true)).toMatchObject({ value: false, source: 'network' })
})

test('a clean bootstrap snapshot still sends its ETag, and a 304 confirms it', async () => {
  server = await createFaultServer()
  const storageName = uniqueStorageName('boot-etag-clean')
  const entries = [{ key: 'payments-kill-switch', value: false }]
  server.always(snapshot(entries, '"clean"'))
  const client = make(storageName, { context: { targetingKey: 'alice' }, flags: entries, etag: '"clean"', fetchedAt: Date.now() })
  expect(await client.start()).toMatchObject({ state: 'ready', source: 'network' })
  expect(server.requests[0].headers['if-none-match']).toBe('"clean"')
  expect(client.getDetails('payments-kill-switch', true)).toMatchObject({ value: false, source: 'network', stale: false })
})

test('a 304 to a bootstrap snapshot of only per-flag errors does not empty the cached values: EMPTY_RESPONSE, values kept', async () => {
  server = await createFaultServer()
  const storageName = uniqueStorageName('boot-etag-errors-only')
  await seed(storageName)
  // Today the flag server (a vendor's bulk endpoint in an outage) answers every flag it was asked
  // about as not found, and 304s to that snapshot's ETag; the page was rendered from it. The same
  // answer as a 200 is partial and removes nothing else; its 304 confirmed "no flags but this one".
  const entries = [{ key: 'payments-kill-switch-v2', errorCode: 'FLAG_NOT_FOUND' }]
  server.always(snapshot(entries, '"not-found"'))
  const client = make(storageName, { context: { targetingKey: 'alice' }, flags: entries as Bootstrap['flags'], etag: '"not-found"', fetchedAt: Date.now() + 1000 })
  const status = await client.start()
  expect(server.requests.at(-1)!.headers['if-none-match']).toBe('"not-found"')
  // Before: both cached flags removed by the 304, state `ready` from the network, every kill switch off.
  expect(client.getGate('payments-kill-switch', false)).toBe(true)
  expect(client.getDetails('banner', 'none')).toMatchObject({ value: 'sale', source: 'cache', stale: true })
  expect(status).toMatchObject({ state: 'stale', error: { code: 'EMPTY_RESPONSE' } })
})
