// Exposures (CONTRACT §6): one per (context, flag, value, variant) per page session, sent like
// any other event, off with `exposures: false`.
import { afterEach, beforeEach, expect, test } from 'vitest'
import { createClient, type EventOptions, type FlagClient } from '@holdfast/core'
import { startEventsReceiver, type EventsReceiver } from '../support/eventsReceiver'
import { createFaultServer, flags } from '../support/faultServer'
import { createTestLogger, uniqueStorageName } from '../support/clock'

let receiver: EventsReceiver
const clients: FlagClient[] = []
beforeEach(async () => {
  receiver = await startEventsReceiver()
  receiver.setFlags([
    { key: 'color', value: 'red', variant: 'r', reason: 'TARGETING_MATCH' },
    { key: 'beta', value: true, reason: 'STATIC' },
  ])
})
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await receiver.close()
})

async function started(events: Partial<EventOptions> = {}, storageName = uniqueStorageName('exposures')) {
  const client = createClient({
    url: receiver.flagsUrl,
    context: { targetingKey: 'alice', plan: 'pro' },
    storageName,
    logger: createTestLogger(),
    events: { url: receiver.url, ...events },
  })
  clients.push(client)
  await client.start()
  return client
}

const exposures = () => receiver.events().filter((e) => e.type === 'exposure')

test('a flag evaluated 100 times with the same value is exposed once, with key, value, variant, reason and source', async () => {
  const client = await started()
  for (let i = 0; i < 100; i++) client.getValue('color', 'none')
  expect(client.getEventStats().queued).toBe(1)
  await client.flush()

  expect(exposures()).toEqual([
    {
      id: expect.any(String),
      type: 'exposure',
      name: 'color',
      flagKey: 'color',
      time: expect.any(Number),
      targetingKey: 'alice',
      value: 'red',
      variant: 'r',
      reason: 'TARGETING_MATCH',
      source: 'network',
    },
  ])
})

test('a new value is a new exposure; going back to a value already exposed is not', async () => {
  const client = await started()
  client.getValue('color', 'none')
  receiver.setFlags([{ key: 'color', value: 'blue', variant: 'b' }])
  await client.refresh()
  for (let i = 0; i < 10; i++) client.getValue('color', 'none')
  receiver.setFlags([{ key: 'color', value: 'red', variant: 'r', reason: 'TARGETING_MATCH' }])
  await client.refresh()
  client.getValue('color', 'none')
  await client.flush()

  expect(exposures().map((e) => [e.value, e.variant])).toEqual([
    ['red', 'r'],
    ['blue', 'b'],
  ])
})

test('each flag, and each user after setContext, gets its own exposure', async () => {
  const client = await started()
  client.getGate('beta')
  client.getValue('color', 'none')
  client.getGate('beta')
  await client.setContext({ targetingKey: 'bob' })
  client.getGate('beta')
  await client.flush()

  expect(exposures().map((e) => `${e.targetingKey}:${e.flagKey}`)).toEqual(['alice:beta', 'alice:color', 'bob:beta'])
})

test('exposures: false sends no exposures, while custom events still go out', async () => {
  const client = await started({ exposures: false })
  for (let i = 0; i < 5; i++) client.getValue('color', 'none')
  client.getDetails('beta', false)
  client.logEvent('checkout')
  await client.flush()

  expect(receiver.events().map((e) => `${e.type}:${e.name}`)).toEqual(['custom:checkout'])
})

test('getDetails with { exposure: false } does not expose; logExposure afterwards does, once', async () => {
  const client = await started()
  const details = client.getDetails('color', 'none', { exposure: false })
  expect(client.getEventStats().queued).toBe(0)
  client.logExposure(details)
  client.logExposure(details)
  await client.flush()
  expect(exposures().map((e) => e.value)).toEqual(['red'])
})

test('a client made after another closed, in the same page and on the same storageName (a provider remounted), does not expose again what the page exposed; another storageName (another queue) does', async () => {
  const name = uniqueStorageName('exposures')
  const first = await started({}, name)
  first.getValue('color', 'none')
  await first.close()
  const second = await started({}, name)
  second.getValue('color', 'none')
  second.getGate('beta')
  await second.flush()
  const other = await started()
  other.getValue('color', 'none')
  await other.flush()
  expect(exposures().map((e) => e.flagKey).sort()).toEqual(['beta', 'color', 'color'])
})

// CONTRACT §6: no exposure for a value that only stands in; a caller's default is not a value the
// server gave, fresh (the flag confirmed missing) or stale (the latest attempt failed).
test("a caller's default is never exposed, fresh or stale, while a held flag read beside it is", async () => {
  const flagServer = await createFaultServer(flags([{ key: 'beta', value: true }]))
  try {
    const client = createClient({ url: flagServer.url, context: { targetingKey: 'alice' }, storageName: uniqueStorageName('exposures-default'), logger: createTestLogger(), events: { url: receiver.url } })
    clients.push(client)
    await client.start()
    expect(client.getDetails('nope', false)).toMatchObject({ source: 'default', stale: false })
    client.getGate('nope')
    flagServer.always({ status: 503, raw: '' })
    expect(await client.refresh()).toMatchObject({ state: 'stale' })
    expect(client.getDetails('nope', false)).toMatchObject({ source: 'default', stale: true })
    for (let i = 0; i < 3; i++) client.getGate('nope'), client.getValue('nope', 'x'), client.getGate('beta')
    await client.flush()
    expect(exposures().map((e) => e.flagKey)).toEqual(['beta'])
  } finally {
    await flagServer.close()
  }
})
