// `maxQueued` reached while a batch is out: the events of that request leave the queue (the bound
// counts them in `dropped`), but the request is already on the wire. What the receiver then says
// decides what they were: delivered (2xx) is `sent`, not `dropped` as well; refused, they stay dropped.
// `queued + sent + dropped` is what the app logged either way.
import { expect, test } from 'vitest'
import { until } from '../support/eventsReceiver'
import { useEventsSuite } from '../support/eventsSuite'

const suite = useEventsSuite({ storage: 'events-bound-inflight', requestTimeoutMs: 5000, backoff: { baseMs: 10, maxMs: 100 } })

async function fillWhileOut(status?: number) {
  suite.receiver.set({ delayMs: 300, ...(status ? { status } : {}) })
  const client = suite.make({ maxQueued: 3, batchSize: 100, flushIntervalMs: 3_600_000 })
  await client.start()
  for (let i = 0; i < 3; i++) client.logEvent('e', { value: i })
  const flushing = client.flush()
  await until(() => suite.receiver.requests.length === 1, 'the first batch out')
  // The receiver holds its answer: three more push the three out of the queue.
  for (let i = 3; i < 6; i++) client.logEvent('e', { value: i })
  expect(client.getEventStats()).toMatchObject({ queued: 3, dropped: 3 })
  await flushing
  return client
}

test('events the bound pushed out while their batch was out, then delivered, count as sent, not also as dropped', async () => {
  const client = await fillWhileOut()
  await client.flush()
  expect(suite.receiver.events().map((e) => e.value)).toEqual([0, 1, 2, 3, 4, 5])
  expect(client.getEventStats()).toEqual({ queued: 0, sent: 6, dropped: 0, retries: 0, retriedRequests: 0 })
})

test('events the bound pushed out while their batch was out, then refused (400), stay dropped once: the counts add up', async () => {
  const client = await fillWhileOut(400)
  suite.receiver.set({})
  await client.flush()
  expect(suite.receiver.events().map((e) => e.value)).toEqual([3, 4, 5])
  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 3, dropped: 3 })
})

test('events the bound pushed out while their batch was out, whose request then failed (503), stay dropped and are not sent again', async () => {
  const client = await fillWhileOut(503)
  suite.receiver.set({})
  await client.flush()
  expect(suite.receiver.events().map((e) => e.value)).toEqual([3, 4, 5])
  const stats = client.getEventStats()
  expect(stats).toMatchObject({ queued: 0, sent: 3, dropped: 3 })
})
