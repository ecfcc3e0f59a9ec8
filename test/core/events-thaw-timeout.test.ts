// The request timeout runs on the client's clock. After a thaw (a laptop asleep with a batch out)
// its timer can fire before the receiver's answer is read, though the receiver took the batch:
// the batch counts as failed and is sent again. That is the at-least-once the protocol allows
// (receivers de-duplicate by id), and it must be all it costs: nothing dropped, nothing out of
// order, the counts right. The thaw is the manual clock jumped past the timeout while the
// receiver (real, on 127.0.0.1) still holds its answer.
import { expect, test } from 'vitest'
import { useEventsSuite } from '../support/eventsSuite'
import { createManualClock } from '../support/clock'
import { fakeEnvironment } from '../support/environment'
import { until } from '../support/eventsReceiver'

const suite = useEventsSuite({ storage: 'events-thaw-timeout', requestTimeoutMs: 5000, backoff: { baseMs: 1000, maxMs: 1000 } })

test('a batch the receiver took but whose answer came after the timeout is sent again: none lost, the order kept, each accepted once', async () => {
  const clock = createManualClock()
  const client = suite.make({ batchSize: 2, exposures: false }, { clock, environment: fakeEnvironment(), random: () => 0.5 })
  for (const name of ['a', 'b', 'c', 'd', 'e']) client.logEvent(name)
  // The receiver takes each batch and answers 1.5 s later; meanwhile the page sleeps past the timeout.
  // Set before start(): logged before it, the five fill a batch, and start() sends the first by
  // itself (delivery.ts, `trigger`). The test once set a 300 ms delay after start() and then
  // flushed, as if nothing went out by itself; on a loaded machine that pass was answered before
  // the delay was set, or the answer came before the test moved the clock, and everything was sent
  // before the "thaw". 1.5 s is the test's time to see the request and move the clock.
  suite.receiver.set({ delayMs: 1500 })
  await client.start()
  await until(() => suite.receiver.requests.length === 1, 'the first batch out')
  clock.advance(5000)
  await until(() => client.getEventStats().lastError?.code === 'TIMEOUT', 'the pass to time out')
  await until(() => suite.receiver.events().length === 2, 'the receiver to take the first batch')
  expect(client.getEventStats()).toMatchObject({ queued: 5, sent: 0, dropped: 0 })
  expect(suite.receiver.requests).toHaveLength(1) // the next try waits for the retry timer
  // The retry, on its timer: everything from the first batch on, in order.
  suite.receiver.set({})
  clock.advance(1000)
  await until(() => client.getEventStats().sent === 5, 'every event sent')
  expect(suite.receiver.events().map((e) => e.name)).toEqual(['a', 'b', 'c', 'd', 'e'])
  expect(suite.receiver.requests.map((r) => r.names)).toEqual([['a', 'b'], ['a', 'b'], ['c', 'd'], ['e']])
  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 5, dropped: 0, retries: 2 })
  expect(client.getEventStats().lastError).toBeUndefined()
})
