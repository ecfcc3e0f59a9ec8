// A value the server's per-flag TYPE_MISMATCH left held (CONTRACT §4) is served like any held value,
// so it is exposed (§6); the client's own type mismatch serves the caller's default and is not.
import { expect, test } from 'vitest'
import { startEventsReceiver, type EventsReceiver } from '../support/eventsReceiver'
import { flags } from '../support/faultServer'
import { useFaultClients } from '../support/faultClients'

const env = useFaultClients()
const client = env.client

test('a value kept through a per-flag TYPE_MISMATCH from the server is exposed, with the reason its details carry', async () => {
  const receiver: EventsReceiver = await startEventsReceiver()
  try {
    env.server.next(flags([{ key: 'beta', value: true, reason: 'STATIC' }, { key: 'other', value: 1 }], '"1"'))
    env.server.always(flags([{ key: 'beta', errorCode: 'TYPE_MISMATCH' }, { key: 'other', value: 1 }], '"2"'))
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
    env.server.always(flags([{ key: 'beta', value: 'yes' }], '"1"'))
    const c = client({ events: { url: receiver.url } })
    await c.start()
    expect(c.getGate('beta')).toBe(false)
    await c.flush()
    expect(receiver.events().filter((e) => e.type === 'exposure')).toEqual([])
  } finally {
    await receiver.close()
  }
})
