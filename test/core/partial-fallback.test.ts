// CONTRACT §5: once a successful response (a partial one too) is applied for the current context,
// fallback values are no longer used: a flag the answer did not list and the client never held
// evaluates to the caller's default.
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

function client(extra: Record<string, unknown> = {}) {
  const c = createClient({
    url: server.url,
    context: { targetingKey: 'alice' },
    storage: createMemoryStorage(),
    logger: createTestLogger(),
    clock: createManualClock(),
    random: () => 0.5,
    refreshOnFocus: false,
    liveUpdates: false,
    requestTimeoutMs: 1000,
    ...extra,
  } as never)
  clients.push(c)
  return c
}

test('a partial answer that does not list a flag never held: the caller\'s default, as a successful answer ends the fallback (CONTRACT §5)', async () => {
  server.always(flags([{ key: 'x', errorCode: 'GENERAL' }, { key: 'v', value: 1 }]))
  const c = client({ fallback: { context: { targetingKey: 'anyone' }, flags: [{ key: 'fb', value: true }], fetchedAt: 0 } })
  const status = await c.start()
  expect(status.state).toBe('ready')
  expect(c.getDetails('fb', false)).toMatchObject({ value: false, source: 'default', errorCode: 'FLAG_NOT_FOUND' })
})
