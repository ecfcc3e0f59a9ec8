// A value the server's per-flag TYPE_MISMATCH left held (CONTRACT §4) is served like any held value,
// so it is exposed (§6); the client's own type mismatch serves the caller's default and is not.
import { afterEach, beforeEach, expect, test } from 'vitest'
import { createClient, createMemoryStorage, type FlagClient } from '@holdfast/core'
import { startEventsReceiver, type EventsReceiver } from '../support/eventsReceiver'
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

test('a value kept through a per-flag TYPE_MISMATCH from the server is exposed, with the reason its details carry', async () => {
  const receiver: EventsReceiver = await startEventsReceiver()
  try {
    server.next(flags([{ key: 'beta', value: true, reason: 'STATIC' }, { key: 'other', value: 1 }], '"1"'))
    server.always(flags([{ key: 'beta', errorCode: 'TYPE_MISMATCH' }, { key: 'other', value: 1 }], '"2"'))
    const c = client({ events: { url: receiver.url } })
    await c.start()
    await c.refresh()
    const details = c.getDetails('beta', false)
    expect(details).toMatchObject({ value: true, stale: true, errorCode: 'TYPE_MISMATCH' })
    expect(c.getGate('beta')).toBe(true)
    await c.flush()
    const exposures = receiver.events().filter((e) => e.type === 'exposure')
    expect(exposures).toEqual([expect.objectContaining({ flagKey: 'beta', value: true, ...(details.reason ? { reason: details.reason } : {}) })])
  } finally {
    await receiver.close()
  }
})

test('the client\'s own type mismatch (a default of another type) is still no exposure', async () => {
  const receiver: EventsReceiver = await startEventsReceiver()
  try {
    server.always(flags([{ key: 'beta', value: 'yes' }], '"1"'))
    const c = client({ events: { url: receiver.url } })
    await c.start()
    expect(c.getGate('beta')).toBe(false)
    await c.flush()
    expect(receiver.events().filter((e) => e.type === 'exposure')).toEqual([])
  } finally {
    await receiver.close()
  }
})
