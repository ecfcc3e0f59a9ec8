// The re-ask after a 304 for an ETag no longer held (etag-confirmed.test.ts) is a second request in
// the same attempt. Whatever overtakes it while it is out — a user switch, close(), clearCache(),
// another refresh(), its own timeout, a 400 or a 429 — is handled as for any request: its answer
// never lands on another user, no promise hangs, and backoff, Retry-After and "no retry after a 400"
// apply to it.
//
//   start()    read cache ── entry "Y" {kill: false} lands
//   refresh()      If-None-Match: "X" ──── 304 "X"
//                                           └─ re-ask (no If-None-Match) ──── [overtaken here]
import { afterEach, beforeEach, expect, test } from 'vitest'
import { createClient, createMemoryStorage, type FlagClient, type FlagStorage } from '@holdfast/core'
import { createFaultServer, flags, type FaultServer, type Reply } from '../support/faultServer'
import { createManualClock, createTestLogger, type ManualClock } from '../support/clock'

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

/** A page for alice with a bootstrap "X" and a newer entry "Y"; `reask` answers the re-ask. */
async function page(reask: Reply, clock: ManualClock = createManualClock(), storage: FlagStorage = createMemoryStorage()) {
  const options = { url: server.url, context: { targetingKey: 'alice' }, storage, logger: createTestLogger(), clock, random: () => 0.5, refreshOnFocus: false, liveUpdates: false as const, requestTimeoutMs: 1000 }
  server.always(flags([{ key: 'kill', value: false }], '"Y"'))
  const first = createClient(options)
  await first.start()
  await first.close()
  server.requests.length = 0
  server.always((request) =>
    request.headers['if-none-match'] === '"X"' ? { status: 304, headers: { ETag: '"X"' } } : request.body.context.targetingKey === 'alice' ? reask : flags([{ key: 'kill', value: true, variant: 'bob' }], '"B"'),
  )
  const client = createClient({ ...options, bootstrap: { context: { targetingKey: 'alice' }, flags: [{ key: 'kill', value: true }], etag: '"X"', fetchedAt: Date.now() - 3600_000 } })
  clients.push(client)
  const states: string[] = []
  client.subscribe(() => states.push(client.getStatus().state))
  const started = client.start()
  const refreshed = client.refresh()
  await server.waitForRequests(2) // the refresh's (If-None-Match "X") and the re-ask
  expect(server.requests.map((r) => r.headers['if-none-match'])).toEqual(['"X"', undefined])
  return { client, started, refreshed, states, clock, options }
}

test('a user switch while the re-ask is out: it is abandoned, its answer never lands on the new user, every promise settles', async () => {
  const { client, started, refreshed } = await page({ ...flags([{ key: 'kill', value: true, variant: 'alice' }], '"X"'), delayMs: 200 })
  const switched = client.setContext({ targetingKey: 'bob' })
  expect(await switched).toMatchObject({ state: 'ready', source: 'network' })
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
  const { client, refreshed, options } = await page({ ...flags([{ key: 'kill', value: true }], '"X"'), delayMs: 100 }, createManualClock(), storage)
  await client.clearCache()
  expect(await refreshed).toMatchObject({ state: 'ready', source: 'network' })
  await client.close()
  // A reload: nothing cached for alice.
  server.always('hang')
  const reload = createClient({ ...options, requestTimeoutMs: 60_000 })
  clients.push(reload)
  void reload.start()
  await server.waitForRequests(3)
  await settle()
  expect(reload.getDetails('kill', false).source).toBe('default')
})

test('a second refresh() while the re-ask is out joins it: no third request, both settle with its answer', async () => {
  const { client, refreshed } = await page({ ...flags([{ key: 'kill', value: true }], '"X"'), delayMs: 100 })
  const again = client.refresh()
  expect(await again).toMatchObject({ state: 'ready', source: 'network' })
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
