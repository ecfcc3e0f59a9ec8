// The defaults CONTRACT §3 and §6 pin, each measured through the public API on an injected clock
// (nothing set but what the test is not about): requestTimeoutMs 5000, refreshIntervalMs 0 (no
// polling), flushIntervalMs 10 s, batchSize 100, maxQueued 10,000 (oldest out, counted in dropped).
import { afterEach, expect, test } from 'vitest'
import { createClient, type FlagClient } from '@holdfast/core'
import { createFaultServer, flags, type FaultServer } from '../support/faultServer'
import { startEventsReceiver, until, type EventsReceiver } from '../support/eventsReceiver'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'

let server: FaultServer | undefined
let receiver: EventsReceiver | undefined
const clients: FlagClient[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await server?.close()
  await receiver?.close()
  server = receiver = undefined
})

test('a request times out after 5000 ms by default, not before', async () => {
  server = await createFaultServer(flags([{ key: 'kill', value: true }]))
  const clock = createManualClock()
  const client = createClient({ url: server.url, context: { targetingKey: 'alice' }, storage: 'memory', clock, logger: createTestLogger(), liveUpdates: false })
  clients.push(client)
  await client.start()
  server.always('hang')
  let settled = false
  const refreshed = client.refresh().then((status) => ((settled = true), status))
  await server.waitForRequests(2)
  expect(clock.pending()).toEqual([5_000])
  // The manual clock counts real time too: 4.9 s leaves room for a slow machine.
  clock.advance(4_900)
  // The timeout's timer is still waiting: nothing else can end the request.
  expect(clock.pending()).toEqual([5_000])
  expect(settled).toBe(false)
  clock.advance(100)
  expect(await refreshed).toMatchObject({ state: 'stale', error: { code: 'TIMEOUT' } })
})

test('no polling by default: an hour after start no request went out by itself', async () => {
  server = await createFaultServer(flags([{ key: 'kill', value: true }]))
  const clock = createManualClock()
  const client = createClient({ url: server.url, context: { targetingKey: 'alice' }, storage: 'memory', clock, logger: createTestLogger(), liveUpdates: false })
  clients.push(client)
  await client.start()
  // Nothing waits on the clock: no time can send a request.
  expect(clock.pending()).toEqual([])
  for (let i = 0; i < 60; i++) clock.advance(60_000)
  expect(clock.pending()).toEqual([])
  expect(server.requests).toHaveLength(1)
})

function eventsClient(clock = createManualClock()) {
  const client = createClient({
    url: receiver!.flagsUrl,
    context: { targetingKey: 'alice' },
    storageName: uniqueStorageName('contract-defaults'),
    clock,
    logger: createTestLogger(),
    liveUpdates: false,
    events: { url: receiver!.url },
  })
  clients.push(client)
  return { client, clock }
}

test('events logged are sent on the 10 s flush interval by default, not before', async () => {
  receiver = await startEventsReceiver()
  const { client, clock } = eventsClient()
  await client.start()
  client.logEvent('clicked')
  await until(() => clock.pending().includes(10_000), 'the flush interval running')
  clock.advance(9_900)
  // The flush timer has not fired.
  expect(clock.pending()).toContain(10_000)
  expect(receiver.requests).toHaveLength(0)
  clock.advance(100)
  await until(() => client.getEventStats().sent === 1, 'the interval flush')
})

test('the 100th event sends a batch of 100 at once by default; the 99 before it wait', async () => {
  receiver = await startEventsReceiver()
  const { client } = eventsClient()
  await client.start()
  for (let i = 0; i < 99; i++) client.logEvent('clicked', { value: i })
  await new Promise((resolve) => setTimeout(resolve, 200))
  expect(receiver.requests).toHaveLength(0)
  client.logEvent('clicked', { value: 99 })
  await until(() => client.getEventStats().sent === 100, 'the batchSize flush')
  expect(receiver.requests.map((r) => r.ids.length)).toEqual([100])
})

test('at most 10,000 events are queued by default: the oldest go first and are counted in dropped', async () => {
  receiver = await startEventsReceiver()
  receiver.set({ down: true })
  const { client } = eventsClient()
  await client.start()
  for (let i = 0; i < 10_005; i++) client.logEvent(`e${i}`)
  await until(() => client.getEventStats().dropped === 5, 'five dropped', 15_000)
  expect(client.getEventStats().queued).toBe(10_000)
  receiver.set({})
  await client.flush()
  await until(() => client.getEventStats().queued === 0, 'all sent', 15_000)
  const names = receiver.events().map((e) => e.name)
  expect(names).toHaveLength(10_000)
  expect(names).not.toContain('e4')
  expect(names).toContain('e5')
  expect(names).toContain('e10004')
}, 60_000)
