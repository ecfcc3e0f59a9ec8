// CONTRACT §4: an identical re-confirmation is no change. A partial answer's FLAG_NOT_FOUND keys are
// a set: the same keys in another order wake no listener.
import { afterEach, beforeEach, expect, test, vi } from 'vitest'
import { createClient, createMemoryStorage, type FlagClient } from '@holdfast/core'
import { createFaultServer, flags, type FaultServer } from '../support/faultServer'
import { createManualClock, createTestLogger } from '../support/clock'

let server: FaultServer
const clients: FlagClient[] = []
beforeEach(async () => {
  server = await createFaultServer()
  // Date alone held still: each success moves lastSuccessAt (a real change of status) otherwise.
  vi.useFakeTimers({ toFake: ['Date'] })
})
afterEach(async () => {
  vi.useRealTimers()
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

test('partial answers with the same FLAG_NOT_FOUND flags in another order wake no listener; a real change does', async () => {
  const fail = { key: "x", errorCode: "GENERAL" }
  server.next(
    flags([{ key: 'a', errorCode: 'FLAG_NOT_FOUND' }, { key: 'b', errorCode: 'FLAG_NOT_FOUND' }, fail, { key: 'v', value: 1 }]),
    flags([{ key: 'b', errorCode: 'FLAG_NOT_FOUND' }, { key: 'a', errorCode: 'FLAG_NOT_FOUND' }, fail, { key: 'v', value: 1 }]),
    flags([{ key: 'b', errorCode: 'FLAG_NOT_FOUND' }, fail, { key: 'v', value: 1 }]),
  )
  const c = client()
  await c.start()
  let calls = 0
  c.subscribe(() => calls++)
  await c.refresh()
  expect(calls).toBe(0)
  await c.refresh()
  expect(calls).toBe(1)
  expect(c.getDetails('a', 0)).toMatchObject({ value: 0, source: 'default', stale: true })
})
