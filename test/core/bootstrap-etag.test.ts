// CONTRACT §2.1, §4, §5: a bootstrap's ETag goes on the first request, and a 304 to it confirms the
// snapshot it names: a held flag that is not in that snapshot goes, "as absent from a clean
// response". Two snapshots make that sentence unsafe, and a 304 then emptied what the cache held:
// - an empty snapshot (the server answered `{"flags": []}` while the page was rendered): its 304
//   removed every cached flag and said `ready`, where the same empty answer as a 200 is refused as
//   EMPTY_RESPONSE ("an outage that answers [] must never look like every kill switch is off");
// - a partial snapshot (per-flag errors): a partial answer keeps the flags it leaves out, so its
//   ETag cannot stand for "everything else is gone" (the client keeps no ETag of its own partial answers).
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
  const client = make(storageName, { context: { targetingKey: 'alice' }, flags: [], etag: '"empty"', fetchedAt: Date.now() })
  const status = await client.start()
  // Before: both flags removed by the 304, state `ready` from the network.
  expect(client.getGate('payments-kill-switch', false)).toBe(true)
  expect(client.getDetails('banner', 'none')).toMatchObject({ value: 'sale', source: 'cache', stale: true })
  expect(status).toMatchObject({ state: 'stale', error: { code: 'EMPTY_RESPONSE' } })
})

test("a partial bootstrap snapshot's ETag is not sent: the full answer is merged, and the flag it leaves out is kept", async () => {
  server = await createFaultServer()
  const storageName = uniqueStorageName('boot-etag-partial')
  await seed(storageName, [{ key: 'banner', value: 'sale' }])
  // The server's answer has a per-flag error for the kill switch, and leaves the banner out.
  const partial = [{ key: 'payments-kill-switch', errorCode: 'GENERAL' }, { key: 'theme', value: 'dark' }]
  server.always(snapshot(partial, '"partial"'))
  const client = make(storageName, { context: { targetingKey: 'alice' }, flags: partial as Bootstrap['flags'], etag: '"partial"', fetchedAt: Date.now() })
  const status = await client.start()
  expect(server.requests.at(-1)!.headers['if-none-match']).not.toBe('"partial"')
  expect(status).toMatchObject({ state: 'ready', source: 'network' })
  // Before: a 304 confirmed the snapshot's keys only, and the banner, left out of a partial answer, was removed.
  expect(client.getDetails('banner', 'none')).toMatchObject({ value: 'sale', stale: true })
  expect(client.getDetails('payments-kill-switch', true)).toMatchObject({ value: true, source: 'default', errorCode: 'GENERAL' })
  expect(client.getValue('theme', 'light')).toBe('dark')
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
