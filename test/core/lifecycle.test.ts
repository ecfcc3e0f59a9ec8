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
