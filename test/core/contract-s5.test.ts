// CONTRACT §5 with §2.1: a `fallback` is a build-time snapshot for any user (its context is
// ignored). `holdfast-server snapshot --upstream … --context …` writes one with the ETag of the
// context it was taken for; sent as If-None-Match for this user, a 304 from a server whose answer
// happens to hash the same would confirm the fallback's values as this user's network values.
import { afterEach, expect, test } from 'vitest'
import { createClient, type Bootstrap, type FlagClient } from '@holdfast/core'
import { createFaultServer, flags, type FaultServer } from '../support/faultServer'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'

let server: FaultServer | undefined
const clients: FlagClient[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await server?.close()
})

test("a fallback's ETag is never sent: the first request for the user names no snapshot, and their own answer replaces the fallback", async () => {
  const fallback: Bootstrap = { context: { targetingKey: 'anonymous' }, flags: [{ key: 'checkout', value: 'classic' }], etag: '"anon-v1"', fetchedAt: 1 }
  // A server that would confirm the fallback's snapshot if asked about it.
  server = await createFaultServer((request) =>
    request.headers['if-none-match'] === '"anon-v1"' ? { status: 304, headers: { ETag: '"anon-v1"' } } : flags([{ key: 'checkout', value: 'new' }], '"alice-v1"'),
  )
  const client = createClient({ url: server.url, context: { targetingKey: 'alice' }, fallback, storageName: uniqueStorageName('s5-fallback-etag'), logger: createTestLogger(), clock: createManualClock() })
  clients.push(client)
  expect(client.getDetails('checkout', 'none')).toMatchObject({ value: 'classic', source: 'fallback', stale: true })
  expect(await client.start()).toMatchObject({ state: 'ready', source: 'network' })
  expect(server.requests[0].headers['if-none-match']).toBeUndefined()
  expect(client.getDetails('checkout', 'none')).toMatchObject({ value: 'new', source: 'network', stale: false })
  // Its own ETag from then on.
  await client.refresh()
  expect(server.requests[1].headers['if-none-match']).toBe('"alice-v1"')
})
