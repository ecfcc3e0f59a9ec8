// A 304 confirms the snapshot its request named, not whatever ETag the client holds by the time
// it arrives. The held one can change while the request is out: a cache entry saved after the
// page's bootstrap (another visit) lands and wins, and brings its own ETag.
//
//   start()    read cache ─────────── entry {kill: false} "Y" lands (newer than the bootstrap)
//   refresh()      If-None-Match: "X" (the bootstrap's) ──── 304 "X": kill is true again
import { afterEach, beforeEach, expect, test } from 'vitest'
import { createClient, createMemoryStorage, type FlagClient } from '@holdfast/core'
import { createFaultServer, flags, type FaultServer } from '../support/faultServer'
import { createManualClock, createTestLogger } from '../support/clock'

let server: FaultServer
const clients: FlagClient[] = []
beforeEach(async () => {
  server = await createFaultServer()
})
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await server.close()
})

test('a 304 to the bootstrap’s ETag, arriving after a newer cache entry won, confirms the bootstrap’s values, not the entry’s', async () => {
  const storage = createMemoryStorage()
  const clock = createManualClock()
  const options = { url: server.url, context: { targetingKey: 'alice' }, storage, logger: createTestLogger(), clock, random: () => 0.5, refreshOnFocus: false, liveUpdates: false }
  // Yesterday's visit saved kill = false under "Y".
  server.always(flags([{ key: 'kill', value: false }], '"Y"'))
  const first = createClient(options)
  clients.push(first)
  await first.start()
  await first.close()

  // The flag was turned back on: the server's snapshot is "X" again, the one a page cached at a CDN
  // an hour ago was rendered with.
  server.always((request) => (request.headers['if-none-match'] === '"X"' ? { status: 304, headers: { ETag: '"X"' } } : flags([{ key: 'kill', value: true }], '"X"')))
  const client = createClient({ ...options, bootstrap: { context: { targetingKey: 'alice' }, flags: [{ key: 'kill', value: true }], etag: '"X"', fetchedAt: Date.now() - 3600_000 } })
  clients.push(client)
  const started = client.start()
  await client.refresh()
  await started
  expect(server.requests.map((r) => r.headers['if-none-match'])).toEqual([undefined, '"X"'])
  // The entry's kill = false is not passed off as what the network confirmed (before: stale false,
  // source network, state ready, and nothing asked again: the server's true never came).
  expect(client.getDetails('kill', true)).toMatchObject({ value: false, stale: true })
  expect(client.getStatus()).toMatchObject({ state: 'stale', error: { code: 'INVALID_RESPONSE' } })
  // Asked again on the backoff, with the ETag now held: the server's current value.
  const count = server.requests.length
  clock.fireNext()
  await server.waitForRequests(count + 1)
  await expect.poll(() => client.getStatus().state).toBe('ready')
  expect(server.requests.at(-1)!.headers['if-none-match']).toBe('"Y"')
  expect(client.getDetails('kill', false)).toMatchObject({ value: true, source: 'network', stale: false })
})
