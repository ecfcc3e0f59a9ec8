// A 304 confirms the snapshot its request named, not whatever ETag the client holds by the time
// it arrives. The held one can change while the request is out: a cache entry saved after the
// page's bootstrap (another visit) lands and wins, and brings its own ETag. The server is healthy,
// so the client asks again at once, in full, once; no error is shown for it.
//
//   start()    read cache ─────────── entry {kill: false} "Y" lands (newer than the bootstrap)
//   refresh()      If-None-Match: "X" (the bootstrap's) ──── 304 "X": kill is true again
//                                                              └─ no If-None-Match ──── 200 "X" {kill: true}
//
// The re-ask is a second request in the same attempt. Whatever overtakes it while it is out — a
// user switch, close(), clearCache(), another refresh(), its own timeout, a 400 or a 429 — is
// handled as for any request: its answer never lands on another user, no promise hangs, and
// backoff, Retry-After and "no retry after a 400" apply to it.
import { afterEach, beforeEach, expect, test } from 'vitest'
import { createClient, createMemoryStorage, type FlagClient, type FlagStorage } from '@holdfast/core'
import { createFaultServer, flags, type FaultServer, type Reply } from '../support/faultServer'
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

const settle = () => new Promise((r) => setTimeout(r, 20))

/**
 * Yesterday's visit saved kill = false under "Y" in `storage`. Returns the options of today's page:
 * rendered an hour ago (a CDN) with kill = true under "X", the server's snapshot again now.
 */
async function yesterday(storage: FlagStorage) {
  const options = { url: server.url, context: { targetingKey: 'alice' }, headers: { Authorization: 'Bearer alice' }, storage, logger: createTestLogger(), clock: createManualClock(), random: () => 0.5, refreshOnFocus: false, liveUpdates: false as const, requestTimeoutMs: 1000 }
  server.always(flags([{ key: 'kill', value: false }], '"Y"'))
  const first = createClient(options)
  await first.start()
  await first.close()
  server.requests.length = 0
  return { ...options, bootstrap: { context: { targetingKey: 'alice' }, flags: [{ key: 'kill', value: true }], etag: '"X"', fetchedAt: Date.now() - 3600_000 } }
}

/** Today's page: start() and refresh() at once; the 304 "X" comes after the entry landed, and `reask` answers the re-ask (bob gets his own values). */
async function page(reask: Reply, storage: FlagStorage = createMemoryStorage()) {
  const options = await yesterday(storage)
  server.always((request) =>
    request.headers['if-none-match'] === '"X"' ? { status: 304, headers: { ETag: '"X"' } } : request.body.context.targetingKey === 'alice' ? reask : flags([{ key: 'kill', value: true, variant: 'bob' }], '"B"'),
  )
  const client = createClient(options)
  clients.push(client)
  const states: string[] = []
  client.subscribe(() => states.push(client.getStatus().state))
  const started = client.start()
  const refreshed = client.refresh()
  await server.waitForRequests(2) // the refresh's (If-None-Match "X") and the re-ask
  expect(server.requests.map((r) => r.headers['if-none-match'])).toEqual(['"X"', undefined])
  return { client, started, refreshed, states, clock: options.clock, options }
}

test('a 304 to the bootstrap’s ETag, arriving after a newer cache entry won, is asked again at once in full: the server’s values, no error shown', async () => {
  const { client, started, refreshed, states } = await page(flags([{ key: 'kill', value: true }], '"X"'))
  await refreshed
  await started
  // The 304 named "X", no longer held: the entry's kill = false is not passed off as what the
  // network confirmed (§2.1). Asked again at once without If-None-Match, once: the server's
  // current value. Before, the state went `stale` with INVALID_RESPONSE on a healthy server, and
  // the true value waited for the backoff.
  expect(server.requests).toHaveLength(2)
  expect(client.getDetails('kill', false)).toMatchObject({ value: true, source: 'network', stale: false })
  expect(client.getStatus()).toMatchObject({ state: 'ready', source: 'network' })
  expect(client.getStatus().error).toBeUndefined()
  expect(states).not.toContain('stale')
  expect(states).not.toContain('error')
})

test('a 304 to the re-ask that named no snapshot is INVALID_RESPONSE, and not asked again at once (no loop)', async () => {
  // A confused proxy that answers 304 to everything.
  const { client, started, refreshed } = await page({ status: 304, headers: { ETag: '"X"' } })
  await refreshed
  await started
  await settle()
  expect(server.requests).toHaveLength(2)
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
  const options = await yesterday(inner)
  let open = () => {}
  const gate = new Promise<void>((resolve) => (open = resolve))
  const storage = { ...inner, get: async (key: string) => (await gate, inner.get(key)) }
  server.always((request) => (request.headers['if-none-match'] === '"X"' ? { status: 304, headers: { ETag: '"X"' }, delayMs: 100 } : flags([{ key: 'kill', value: true }], '"X"')))
  const client = createClient({ ...options, storage })
  clients.push(client)
  const started = client.start()
  const refreshed = client.refresh()
  await server.waitForRequests(1)
  client.pause()
  open()
  await refreshed
  await started
  await new Promise((r) => setTimeout(r, 50))
  // Before: a second request went out after the logout, with alice's context and her Authorization.
  expect(server.requests.map((r) => r.headers['if-none-match'])).toEqual(['"X"'])
  // Nor a false alarm: the server is healthy. What is held stays as it is (the entry's), not confirmed.
  expect(client.getStatus().error).toBeUndefined()
  expect(client.getDetails('kill', true)).toMatchObject({ value: false, source: 'cache' })
})

test('a user switch while the re-ask is out: it is abandoned, its answer never lands on the new user, every promise settles', async () => {
  const { client, started, refreshed } = await page({ ...flags([{ key: 'kill', value: true, variant: 'alice' }], '"X"'), delayMs: 200 })
  expect(await client.setContext({ targetingKey: 'bob' })).toMatchObject({ state: 'ready', source: 'network' })
  await refreshed
  await started
  await new Promise((r) => setTimeout(r, 300)) // past the re-ask's answer
  expect(server.requests[1].abandoned).toBe(true)
  expect(client.getDetails('kill', false)).toMatchObject({ value: true, variant: 'bob', source: 'network' })
})

test('close() while the re-ask is out: it is abandoned, refresh() and start() settle', async () => {
  const { client, started, refreshed } = await page('hang')
  await client.close()
  await refreshed
  await started
  await settle()
  expect(server.requests[1].abandoned).toBe(true)
  expect(server.requests).toHaveLength(2)
})

test('clearCache() while the re-ask is out: its answer is shown but not written back (a logout forgets it)', async () => {
  const storage = createMemoryStorage()
  const { client, refreshed, options } = await page({ ...flags([{ key: 'kill', value: true }], '"X"'), delayMs: 100 }, storage)
  await client.clearCache()
  expect(await refreshed).toMatchObject({ state: 'ready', source: 'network' })
  await client.close()
  // A reload without a bootstrap: nothing cached for alice.
  server.always('hang')
  const reload = createClient({ ...options, bootstrap: undefined, requestTimeoutMs: 60_000 })
  clients.push(reload)
  void reload.start()
  await server.waitForRequests(3)
  await settle()
  expect(reload.getDetails('kill', false).source).toBe('default')
})

test('a second refresh() while the re-ask is out joins it: no third request, both settle with its answer', async () => {
  const { client, refreshed } = await page({ ...flags([{ key: 'kill', value: true }], '"X"'), delayMs: 100 })
  expect(await client.refresh()).toMatchObject({ state: 'ready', source: 'network' })
  expect(await refreshed).toMatchObject({ state: 'ready', source: 'network' })
  expect(server.requests).toHaveLength(2)
})

test('the re-ask times out: stale (TIMEOUT), never `error` or `loading` on the way, and retried on the backoff', async () => {
  const { client, refreshed, states, clock } = await page('hang')
  clock.advance(1000)
  expect(await refreshed).toMatchObject({ state: 'stale', error: { code: 'TIMEOUT' } })
  expect(states).not.toContain('error')
  expect(states).not.toContain('loading')
  expect(client.getDetails('kill', true)).toMatchObject({ value: false, stale: true })
  server.always(flags([{ key: 'kill', value: true }], '"X"'))
  clock.advance(2000) // the first backoff (1 s, jitter 0.5 → 1.5 s)
  await server.waitForRequests(3)
  await settle()
  expect(client.getStatus()).toMatchObject({ state: 'ready', source: 'network' })
})

test('the re-ask answered 400: INVALID_CONTEXT, and no automatic retry for the context', async () => {
  const { client, refreshed, clock } = await page({ status: 400, body: { errorCode: 'INVALID_CONTEXT' } })
  expect(await refreshed).toMatchObject({ state: 'error', error: { code: 'INVALID_CONTEXT' } })
  for (let i = 0; i < 5; i++) (clock.advance(70_000), await settle())
  expect(server.requests).toHaveLength(2)
  expect(client.getDetails('kill', true)).toMatchObject({ value: false })
})

test('the re-ask answered 429 with Retry-After: refresh() waits for it too', async () => {
  const { client, refreshed, clock } = await page({ status: 429, headers: { 'Retry-After': '30' } })
  expect(await refreshed).toMatchObject({ state: 'stale', error: { httpStatus: 429 } })
  await client.refresh()
  expect(server.requests).toHaveLength(2)
  server.always(flags([{ key: 'kill', value: true }], '"X"'))
  clock.advance(30_000)
  await server.waitForRequests(3)
  await settle()
  expect(client.getStatus()).toMatchObject({ state: 'ready' })
})
