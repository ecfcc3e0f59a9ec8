// A receiver that answers 413 to every request (a WAF, a proxy whose body cap is set far too low)
// is not a receiver of events too large: CONTRACT §6 splits a batch on 413 and drops a lone event
// still refused, so one oversized event costs only itself. A second lone event refused in the same
// pass, before the receiver took anything, says it refuses everything: both are kept, and delivery
// backs off as for a 5xx. A lone one is dropped only once the receiver took another request.
import { expect, test } from 'vitest'
import { until } from '../support/eventsReceiver'
import { useEventsSuite } from '../support/eventsSuite'
import { createManualClock } from '../support/clock'

const suite = useEventsSuite({ storage: 'events-413-all', requestTimeoutMs: 5000, backoff: { baseMs: 1000, maxMs: 60_000 } })

test('a receiver answering 413 to everything costs no event, and is not flooded', async () => {
  suite.receiver.set({ status: 413 })
  const clock = createManualClock()
  const client = suite.make({ batchSize: 100, flushIntervalMs: 3_600_000 }, { clock })
  await client.start()
  // A full batch starts a pass by itself (no flush(): that one would skip the backoff).
  for (let i = 0; i < 300; i++) client.logEvent('e', { value: i })
  await until(() => client.getEventStats().lastError !== undefined, 'the pass to end')
  // 100 → 50 → … → 1 (held), then the next lone one: the pass ends, keeps both and backs off.
  expect(suite.receiver.requests.length).toBeLessThanOrEqual(10)
  expect(client.getEventStats()).toMatchObject({ queued: 300, sent: 0, dropped: 0 })
  expect(client.getEventStats().lastError).toMatchObject({ httpStatus: 413 })
  const before = suite.receiver.requests.length
  await new Promise((resolve) => setTimeout(resolve, 200))
  expect(suite.receiver.requests.length).toBe(before) // nothing until the backoff is up

  // The receiver is fixed: the backoff's retry sends the rest.
  suite.receiver.set({})
  clock.advance(1000)
  await until(() => client.getEventStats().queued === 0, 'the retry after the backoff')
  expect(suite.receiver.events()).toHaveLength(300)
  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 300, dropped: 0 })
})

test('two oversized events side by side: each is dropped alone, in its own pass, and the rest arrive', async () => {
  suite.receiver.set({ tooLargeName: 'huge' })
  const client = suite.make({ batchSize: 100, flushIntervalMs: 3_600_000 })
  client.logEvent('a')
  client.logEvent('huge')
  client.logEvent('huge')
  client.logEvent('b')
  await client.flush()
  await client.flush()
  expect(suite.receiver.events().map((e) => e.name)).toEqual(['a', 'b'])
  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 2, dropped: 2 })
})

// An app that flushes after every event it logs (a checkout step, a route change): each flush() is a
// pass of its own, and each pass cost its first lone event while the receiver refused everything.
test('a receiver answering 413 to everything, an app calling flush() after each event: nothing is dropped, all arrive once it is fixed', async () => {
  suite.receiver.set({ status: 413 })
  const client = suite.make({ batchSize: 100, flushIntervalMs: 3_600_000 })
  await client.start()
  for (let i = 0; i < 10; i++) {
    client.logEvent('step', { value: i })
    await client.flush()
  }
  expect(client.getEventStats()).toMatchObject({ queued: 10, sent: 0, dropped: 0 })
  expect(client.getEventStats().lastError).toMatchObject({ httpStatus: 413 })

  suite.receiver.set({})
  await client.flush()
  expect(suite.receiver.events()).toHaveLength(10)
  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 10, dropped: 0 })
})

test('an oversized event alone in the queue is kept until the receiver takes another, then dropped alone', async () => {
  suite.receiver.set({ tooLargeName: 'huge' })
  const client = suite.make({ batchSize: 100, flushIntervalMs: 3_600_000 })
  client.logEvent('huge')
  await client.flush()
  client.logEvent('a')
  await client.flush()
  expect(suite.receiver.events().map((e) => e.name)).toEqual(['a'])
  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 1, dropped: 1 })
})
