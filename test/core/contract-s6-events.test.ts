// CONTRACT §6 with §2.2, through the public API against a real events receiver on 127.0.0.1: the
// wire shape of a custom event and of an exposure, metadata copied at logEvent, and a metadata value
// outside string | number | boolean left out with a warning without taking other events down.
import { afterEach, expect, test } from 'vitest'
import { createClient, type FlagClient } from '@holdfast/core'
import { startEventsReceiver, type EventsReceiver } from '../support/eventsReceiver'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'

let receiver: EventsReceiver | undefined
const clients: FlagClient[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await receiver?.close()
  receiver = undefined
})

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

async function started() {
  receiver = await startEventsReceiver()
  receiver.setFlags([{ key: 'checkout', value: 'new', variant: 'treatment', reason: 'SPLIT' }])
  const logger = createTestLogger()
  const clock = createManualClock()
  const client = createClient({
    url: receiver.flagsUrl,
    context: { targetingKey: 'alice', plan: 'pro' },
    storageName: uniqueStorageName('contract-s6-events'),
    clock,
    logger,
    liveUpdates: false,
    events: { url: receiver.url, flushIntervalMs: 60_000 },
  })
  clients.push(client)
  await client.start()
  return { client, logger, clock }
}

test('a custom event and an exposure arrive in the §2.2 shape: one POST {events: [...]} as JSON, unique UUID v4 ids, epoch-ms times', async () => {
  const { client, clock } = await started()
  const before = clock.now()
  client.logEvent('purchase', { value: 42, metadata: { currency: 'EUR', items: 3, gift: false } })
  client.getValue('checkout', 'old')
  await client.flush()
  expect(receiver!.requests).toHaveLength(1)
  expect(receiver!.requests[0].headers['content-type']).toMatch(/^application\/json/)
  const [custom, exposure] = receiver!.events()
  expect(custom).toMatchObject({ type: 'custom', name: 'purchase', targetingKey: 'alice', value: 42, metadata: { currency: 'EUR', items: 3, gift: false } })
  expect(exposure).toMatchObject({ type: 'exposure', name: 'checkout', flagKey: 'checkout', targetingKey: 'alice', value: 'new', variant: 'treatment', reason: 'SPLIT' })
  for (const event of [custom, exposure]) {
    expect(event.id).toMatch(UUID_V4)
    expect(event.time).toBeGreaterThanOrEqual(before)
    expect(event.time).toBeLessThanOrEqual(clock.now())
  }
  expect(custom.id).not.toBe(exposure.id)
  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 2, dropped: 0 })
})

test('metadata is copied at logEvent: changing the object afterwards changes nothing sent', async () => {
  const { client } = await started()
  const metadata: Record<string, string | number | boolean> = { step: 'cart', count: 1 }
  client.logEvent('checkout-step', { metadata })
  metadata.step = 'changed'
  metadata.count = 99
  metadata.added = true
  await client.flush()
  expect(receiver!.events()[0].metadata).toEqual({ step: 'cart', count: 1 })
})

test('a metadata value outside string | number | boolean is left out with a warning; that event and the others still go', async () => {
  const { client, logger } = await started()
  client.logEvent('before')
  client.logEvent('odd', { metadata: { ok: 'yes', nested: { a: 1 }, list: [1, 2], nothing: null, when: new Date(0), fn: (() => 1) as never } as never })
  client.logEvent('after', { metadata: { n: 2 } })
  await client.flush()
  const events = receiver!.events()
  expect(events.map((e) => e.name)).toEqual(['before', 'odd', 'after'])
  expect(events[1].metadata).toEqual({ ok: 'yes' })
  expect(events[2].metadata).toEqual({ n: 2 })
  expect(logger.warnings.join('\n')).toMatch(/\[holdfast\]/)
  expect(client.getEventStats()).toMatchObject({ sent: 3, dropped: 0 })
})
