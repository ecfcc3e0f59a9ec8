// Event delivery runs on the client's one scheduler (the same backoff, Retry-After and offline rules
// as flag sync): flapping online/offline never sends early, `Retry-After: 0` is raised to the base
// delay, an HTTP-date `Retry-After` is read against the server's `Date`, and the flush interval is
// the scheduler's timer on the injected clock. The environment is a fake the test drives; the
// suite.receiver is real.
import { expect, test } from 'vitest'
import { until } from '../support/eventsReceiver'
import { useEventsSuite } from '../support/eventsSuite'
import { createManualClock } from '../support/clock'
import { fakeEnvironment } from '../support/environment'

const suite = useEventsSuite({ storage: 'events-scheduler', requestTimeoutMs: 2000, backoff: { baseMs: 1000, maxMs: 8000 } })
const make = suite.make.bind(suite)

const eventRequests = () => suite.receiver.requests.length

/** A client on a manual clock and a fake environment whose first delivery of one event failed (the receiver is down). */
async function oneFailedDelivery() {
  suite.receiver.set({ down: true })
  const clock = createManualClock()
  const env = fakeEnvironment()
  const client = make({}, { clock, environment: env, random: () => 1 })
  await client.start()
  client.logEvent('a')
  await client.flush()
  return { clock, env, client }
}

test('flapping online/offline never bypasses backoff: the retry waits for its timer', async () => {
  const { clock, env, client } = await oneFailedDelivery()
  expect(eventRequests()).toBe(1)
  expect(clock.pending()).toContain(1000)

  for (let i = 0; i < 20; i++) {
    env.isOnline = false
    env.fire('hidden') // a hidden page is an automatic trigger too
    env.fire('online')
  }
  await new Promise((resolve) => setTimeout(resolve, 100))
  expect(eventRequests()).toBe(1)

  suite.receiver.set({})
  clock.advance(1000)
  await until(() => client.getEventStats().sent === 1, 'the retry, on its timer')
  expect(eventRequests()).toBe(2)
})

test('offline when the retry falls due: nothing is sent until `online`, then it goes at once', async () => {
  const { clock, env, client } = await oneFailedDelivery()
  suite.receiver.set({})
  env.isOnline = false
  clock.advance(1000) // the retry falls due while offline
  await new Promise((resolve) => setTimeout(resolve, 50))
  expect(eventRequests()).toBe(1)
  env.fire('online')
  await until(() => client.getEventStats().sent === 1, 'the send after `online`')
})

test('Retry-After: 0 from a failing server is raised to the base delay: at most 5 requests in 3 s', async () => {
  suite.receiver.set({ status: 503, retryAfter: '0' })
  const clock = createManualClock()
  const client = make({ backoff: { baseMs: 1000, maxMs: 1000 } }, { clock })
  await client.start()
  client.logEvent('a')
  await client.flush()
  for (let elapsed = 0; elapsed < 3000; elapsed += 50) {
    clock.advance(50)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
  await new Promise((resolve) => setTimeout(resolve, 50))
  expect(eventRequests()).toBeGreaterThanOrEqual(2) // it does retry
  expect(eventRequests()).toBeLessThanOrEqual(5)
  expect(Math.min(...clock.pending())).toBeGreaterThanOrEqual(500)
})

test('an HTTP-date Retry-After is read against the server’s Date: a client clock an hour behind is not parked for an hour', async () => {
  const serverNow = Date.now()
  suite.receiver.set({
    status: 503,
    retryAfter: new Date(serverNow + 3000).toUTCString(),
    headers: { Date: new Date(serverNow).toUTCString() },
  })
  const manual = createManualClock()
  const behind = { ...manual, now: () => manual.now() - 60 * 60 * 1000 }
  const client = make({}, { clock: behind, random: () => 0 })
  await client.start()
  client.logEvent('a')
  await client.flush()
  expect(eventRequests()).toBe(1)
  const retry = Math.max(...manual.pending())
  expect(retry).toBeGreaterThanOrEqual(2000)
  expect(retry).toBeLessThanOrEqual(4000)
  suite.receiver.set({})
  manual.advance(retry)
  await until(() => client.getEventStats().sent === 1, 'the retry a few seconds later')
})

test('the flush interval is a timer on the injected clock: events go after flushIntervalMs, no flush() needed', async () => {
  const clock = createManualClock()
  const client = make({ flushIntervalMs: 30_000 }, { clock })
  await client.start()
  await until(() => clock.pending().includes(30_000), 'delivery loaded and its interval running')
  client.logEvent('a')
  clock.advance(29_000)
  await new Promise((resolve) => setTimeout(resolve, 50))
  expect(eventRequests()).toBe(0)
  clock.advance(1_000)
  await until(() => client.getEventStats().sent === 1, 'the interval flush')
  // And it keeps ticking.
  await until(() => clock.pending().includes(30_000), 'the interval re-armed after the flush')
  client.logEvent('b')
  clock.advance(30_000)
  await until(() => client.getEventStats().sent === 2, 'the next interval flush')
})

// CONTRACT §6: batches flush "at batchSize". Events logged before start() (a child component's
// mount effect runs before the provider's, which starts the client) that already fill a batch
// waited for the next interval: with the default 10 s, and with a long interval for as long as it
// lasts. Start sends a full batch as the batchSize trigger would have.
test('a full batch logged before start() goes out when the client starts, not on the next interval', async () => {
  const clock = createManualClock()
  const client = make({ batchSize: 5, flushIntervalMs: 3_600_000 }, { clock })
  for (let i = 0; i < 5; i++) client.logEvent('mounted', { value: i })
  await client.start()
  await until(() => client.getEventStats().sent === 5, 'the full batch sent at start, with no interval passed', 3000)
  expect(eventRequests()).toBe(1)
})

// Pins what docs/events.md says of Retry-After for events (it said "more than 60 s is 60 s", true before
// 68cffb1): a sink shedding load for ten minutes is asked again after ten minutes, not every minute.
// Passes as is: the events' wait is the one scheduler's, honoured up to an hour.
test('Retry-After: 600 from the events sink holds delivery ten minutes, not one', async () => {
  suite.receiver.set({ status: 503, retryAfter: '600' })
  const clock = createManualClock()
  const client = make({ flushIntervalMs: 10_000 }, { clock, environment: fakeEnvironment(), random: () => 1 })
  await client.start()
  client.logEvent('a')
  await client.flush()
  expect(eventRequests()).toBe(1)
  suite.receiver.set({})
  clock.advance(599_000)
  await new Promise((resolve) => setTimeout(resolve, 50))
  expect(eventRequests()).toBe(1)
  clock.advance(1_000)
  await until(() => client.getEventStats().sent === 1, 'the retry after ten minutes')
})
