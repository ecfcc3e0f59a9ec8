// A 304 confirms the snapshot its request named, not whatever ETag the client holds by the time
// it arrives. The held one can change while the request is out: a cache entry saved after the
// page's bootstrap (another visit) lands and wins, and brings its own ETag. The server is healthy,
// so the client asks again at once, in full, once; no error is shown for it.
//
//   start()    read cache ─────────── entry {kill: false} "Y" lands (newer than the bootstrap)
//   refresh()      If-None-Match: "X" (the bootstrap's) ──── 304 "X": kill is true again
//                                                              └─ no If-None-Match ──── 200 "X" {kill: true}
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

test('a 304 to the bootstrap’s ETag, arriving after a newer cache entry won, is asked again at once in full: the server’s values, no error shown', async () => {
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
  const states: string[] = []
  client.subscribe(() => states.push(client.getStatus().state))
  const started = client.start()
  await client.refresh()
  await started
  // The 304 named "X", no longer held: the entry's kill = false is not passed off as what the
  // network confirmed (§2.1). Asked again at once without If-None-Match, once: the server's
  // current value. Before, the state went `stale` with INVALID_RESPONSE on a healthy server, and
  // the true value waited for the backoff.
  expect(server.requests.map((r) => r.headers['if-none-match'])).toEqual([undefined, '"X"', undefined])
  expect(client.getDetails('kill', false)).toMatchObject({ value: true, source: 'network', stale: false })
  expect(client.getStatus()).toMatchObject({ state: 'ready', source: 'network' })
  expect(client.getStatus().error).toBeUndefined()
  expect(states).not.toContain('stale')
  expect(states).not.toContain('error')
})

test('a 304 to the re-ask that named no snapshot is INVALID_RESPONSE, and not asked again at once (no loop)', async () => {
  const storage = createMemoryStorage()
  const clock = createManualClock()
  const options = { url: server.url, context: { targetingKey: 'alice' }, storage, logger: createTestLogger(), clock, random: () => 0.5, refreshOnFocus: false, liveUpdates: false }
  server.always(flags([{ key: 'kill', value: false }], '"Y"'))
  const first = createClient(options)
  clients.push(first)
  await first.start()
  await first.close()

  // A confused proxy that answers 304 to everything.
  server.always({ status: 304, headers: { ETag: '"X"' } })
  const client = createClient({ ...options, bootstrap: { context: { targetingKey: 'alice' }, flags: [{ key: 'kill', value: true }], etag: '"X"', fetchedAt: Date.now() - 3600_000 } })
  clients.push(client)
  const started = client.start()
  await client.refresh()
  await started
  expect(server.requests.map((r) => r.headers['if-none-match'])).toEqual([undefined, '"X"', undefined])
  expect(client.getDetails('kill', true)).toMatchObject({ value: false, stale: true })
  expect(client.getStatus()).toMatchObject({ state: 'stale', error: { code: 'INVALID_RESPONSE' } })
})

// A logout while that request is out: pause() says no request at all goes out for the user who
// left until the next setContext (the one already out may finish). The re-ask is a new request.
//
//   refresh()  If-None-Match: "X" ────────────────── 304 "X" (no longer held)
//   pause()        entry "Y" lands                      └─ (no re-ask: nobody is on the page)
test('a 304 for an ETag no longer held that arrives after pause() is not asked again: no request for the user who left', async () => {
  const inner = createMemoryStorage()
  const clock = createManualClock()
  const options = { url: server.url, context: { targetingKey: 'alice' }, headers: { Authorization: 'Bearer alice' }, logger: createTestLogger(), clock, random: () => 0.5, refreshOnFocus: false, liveUpdates: false }
  server.always(flags([{ key: 'kill', value: false }], '"Y"'))
  const first = createClient({ ...options, storage: inner })
  clients.push(first)
  await first.start()
  await first.close()

  let open = () => {}
  const gate = new Promise<void>((resolve) => (open = resolve))
  const storage = { ...inner, get: async (key: string) => (await gate, inner.get(key)) }
  server.always((request) => (request.headers['if-none-match'] === '"X"' ? { status: 304, headers: { ETag: '"X"' }, delayMs: 100 } : flags([{ key: 'kill', value: true }], '"X"')))
  const client = createClient({ ...options, storage, bootstrap: { context: { targetingKey: 'alice' }, flags: [{ key: 'kill', value: true }], etag: '"X"', fetchedAt: Date.now() - 3600_000 } })
  clients.push(client)
  const started = client.start()
  const refreshed = client.refresh()
  await server.waitForRequests(2)
  client.pause()
  open()
  await refreshed
  await started
  await new Promise((r) => setTimeout(r, 50))
  // Before: a third request went out after the logout, with alice's context and her Authorization.
  expect(server.requests.map((r) => r.headers['if-none-match'])).toEqual([undefined, '"X"'])
  // Nor a false alarm: the server is healthy. What is held stays as it is (the entry's), not confirmed.
  expect(client.getStatus().error).toBeUndefined()
  expect(client.getDetails('kill', true)).toMatchObject({ value: false, source: 'cache' })
})
