// CONTRACT §1 and §3: creating a client does nothing (no request, no storage, no timer), start()
// is idempotent, close() is final.
import { afterEach, beforeEach, expect, test, vi } from 'vitest'
import { createClient, type FlagClient } from '@holdfast/core'
import { createFaultServer, flags, type FaultServer } from '../support/faultServer'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'

let server: FaultServer
let client: FlagClient
beforeEach(async () => {
  server = await createFaultServer(flags([{ key: 'a', value: true }]))
})
afterEach(async () => {
  vi.restoreAllMocks()
  await client?.close()
  await server.close()
})

test('createClient and evaluation fetch nothing, open no database and set no timer', async () => {
  // Exposures off: an exposure is an event, and events are persisted within 100 ms of being
  // logged (CONTRACT §6), before start() too; that is tested with the event queue.
  const open = vi.spyOn(indexedDB, 'open')
  const fetchSpy = vi.fn(globalThis.fetch)
  const clock = createManualClock()
  client = createClient({
    url: server.url,
    context: { targetingKey: 'u' },
    storageName: uniqueStorageName('lifecycle'),
    fetch: fetchSpy,
    clock,
    refreshIntervalMs: 1000,
    events: { url: `${server.url}/events`, exposures: false },
    bootstrap: { context: { targetingKey: 'u' }, flags: [{ key: 'a', value: false }], fetchedAt: 1 },
    logger: createTestLogger(),
  })
  expect(client.getGate('a', true)).toBe(false)
  client.getDetails('a', true, { exposure: false })
  client.snapshot()
  await new Promise((r) => setTimeout(r, 20))
  expect(fetchSpy).not.toHaveBeenCalled()
  expect(open).not.toHaveBeenCalled()
  expect(clock.pending()).toEqual([])
  expect(server.requests).toHaveLength(0)
})

test('start() is idempotent: one promise, one request', async () => {
  client = createClient({ url: server.url, context: { targetingKey: 'u' }, storageName: uniqueStorageName('lifecycle'), logger: createTestLogger() })
  const first = client.start()
  const second = client.start()
  expect(second).toBe(first)
  await first
  await client.start()
  expect(server.requests).toHaveLength(1)
})

test('after close() nothing is fetched or scheduled, and evaluation still answers from memory', async () => {
  const clock = createManualClock()
  const logger = createTestLogger()
  client = createClient({ url: server.url, context: { targetingKey: 'u' }, storageName: uniqueStorageName('lifecycle'), clock, refreshIntervalMs: 1000, logger })
  await client.start()
  await client.close()
  expect(clock.pending()).toEqual([])
  expect((await client.start()).state).toBe('ready')
  await client.refresh()
  // A closed client is done: switching it would leave the new user 'loading' for good (no request
  // will ever go out). The call is ignored with a warning; the client still shows its last user.
  expect((await client.setContext({ targetingKey: 'other' })).state).toBe('ready')
  expect(logger.warnings.filter((line) => /after close/.test(line))).toHaveLength(1)
  expect(client.getContext().targetingKey).toBe('u')
  expect(client.getStatus().state).toBe('ready')
  expect(server.requests).toHaveLength(1)
  expect(client.getGate('a')).toBe(true)
})

// A closed client has nothing pending: `loading` ("the first attempt is pending") would never end,
// and an app waiting for it (a spinner, FlagsReady, an OpenFeature readiness) waited for good.
// Decided: with no values in hand, close() ends the first attempt as a failure, state `error`.
test('close() while start() waits for the first answer: state `error`, not `loading` for good; start() resolves', async () => {
  server.always('hang')
  client = createClient({ url: server.url, context: { targetingKey: 'u' }, storage: 'memory', liveUpdates: false, logger: createTestLogger() })
  const started = client.start()
  await server.waitForRequests(1)
  await client.close()
  // Before: 'loading', for as long as the page lived. The message is pinned:
  // docs/failure-semantics.md documents it, and @holdfast/openfeature (providerCore.ts) tells a
  // closed passed-in client by it (no field or code of its own: each would cost up-front bytes the
  // size budgets do not have).
  expect(client.getStatus()).toMatchObject({ state: 'error', error: { code: 'NETWORK', message: 'client closed' } })
  expect((await started).state).toBe('error')
  expect(client.getGate('a', false)).toBe(false)
})

test('close() before start(): `error`; a client with values keeps them and its state', async () => {
  client = createClient({ url: server.url, context: { targetingKey: 'u' }, storage: 'memory', liveUpdates: false, logger: createTestLogger() })
  await client.close()
  expect(client.getStatus()).toMatchObject({ state: 'error', error: { code: 'NETWORK', message: 'client closed' } })
  const other = createClient({ url: server.url, context: { targetingKey: 'u' }, storage: 'memory', liveUpdates: false, logger: createTestLogger() })
  await other.start()
  await other.close()
  expect(other.getStatus()).toMatchObject({ state: 'ready', source: 'network' })
  expect(other.getGate('a', false)).toBe(true)
})
