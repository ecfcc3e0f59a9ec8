// A wrong events URL or key (401, 403, 404, 405, 410) is not the events' fault: nothing is dropped,
// delivery backs off, and the app can see why its events wait (`getEventStats().lastError`, and one
// error in the log). A batch the suite.receiver finds bad (400, 422) is still dropped and counted. An
// events URL built as `base/` + `/events` still reaches `/events`. All against a real suite.receiver.
import { expect, test } from 'vitest'
import fc from 'fast-check'

import { normalizeUrl } from '../../packages/core/src/events/delivery/eventTransport'
import { until } from '../support/eventsReceiver'
import { useEventsSuite } from '../support/eventsSuite'
import { createManualClock, createTestLogger } from '../support/clock'

const suite = useEventsSuite({ storage: 'events-refused', requestTimeoutMs: 2000, backoff: { baseMs: 100, maxMs: 400 } })
const make = suite.make.bind(suite)


test.each([
  [401, 'UNAUTHORIZED'],
  [403, 'UNAUTHORIZED'],
  [404, 'HTTP'],
  [405, 'HTTP'],
  [410, 'HTTP'],
])('HTTP %i keeps every event, backs off, says why in the stats and logs it once; fixed, all arrive', async (status, code) => {
  suite.receiver.set({ status })
  const clock = createManualClock()
  const logger = createTestLogger()
  const client = make({}, { clock, logger, random: () => 1 })
  await client.start() // retries are timers, and timers run from start()
  for (let i = 0; i < 3; i++) client.logEvent('purchase', { value: i })
  await client.flush()

  expect(suite.receiver.requests).toHaveLength(1)
  expect(client.getEventStats()).toMatchObject({ queued: 3, sent: 0, dropped: 0, retriedRequests: 0 })
  expect(client.getEventStats().lastError).toEqual({ code, httpStatus: status, message: expect.stringContaining(`HTTP ${status}`) })
  expect(logger.errors).toEqual([expect.stringMatching(new RegExp(`^\\[holdfast\\] events are kept.*HTTP ${status}.*events\\.url.*next try in 100 ms`))])
  // Backing off: the next try waits for its timer.
  expect(clock.pending()).toContain(100)
  await client.flush()
  expect(suite.receiver.requests).toHaveLength(2) // an explicit flush does try now
  await until(() => clock.pending().includes(200), 'the backoff after that')

  expect(clock.fireNext()).toBe(200)
  await until(() => suite.receiver.requests.length === 3, 'the retry')
  await until(() => clock.pending().includes(400), 'the next backoff')
  expect(client.getEventStats()).toMatchObject({ queued: 3, dropped: 0, retries: 6, retriedRequests: 2 })
  // Shouted once; the retries after it are warnings.
  expect(logger.errors).toHaveLength(1)
  expect(logger.warnings.at(-1)).toMatch(/events are kept.*next try in 400 ms/)

  suite.receiver.set({})
  clock.fireNext()
  await until(() => client.getEventStats().sent === 3, 'delivery once the URL works')
  expect(suite.receiver.events().map((e) => e.value)).toEqual([0, 1, 2])
  const stats = client.getEventStats()
  expect(stats).toEqual({ queued: 0, sent: 3, dropped: 0, retries: 9, retriedRequests: 3 })
  expect('lastError' in stats).toBe(false)
})

test.each([400, 422])('HTTP %i still drops that batch (counted), and later ones go out', async (status) => {
  suite.receiver.set({ status })
  const client = make({ batchSize: 2 })
  client.logEvent('bad-1')
  client.logEvent('bad-2')
  await client.flush()
  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 0, dropped: 2 })
  suite.receiver.set({})
  client.logEvent('good')
  await client.flush()
  expect(suite.receiver.events().map((e) => e.name)).toEqual(['good'])
  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 1, dropped: 2 })
})

test('retriedRequests counts requests, retries count events: 10 events through two 503s', async () => {
  suite.receiver.set({ down: true })
  const clock = createManualClock()
  const logger = createTestLogger()
  const client = make({}, { clock, logger })
  await client.start()
  for (let i = 0; i < 10; i++) client.logEvent('e', { value: i })
  await client.flush()
  clock.fireNext()
  // Each failure is logged once its retry is scheduled.
  await until(() => logger.warnings.filter((m) => m.includes('sending events failed')).length === 2, 'the first retry failed')
  suite.receiver.set({})
  clock.fireNext()
  await until(() => client.getEventStats().sent === 10, 'delivery')
  expect(client.getEventStats()).toEqual({ queued: 0, sent: 10, dropped: 0, retries: 20, retriedRequests: 2 })
  expect(client.getEventStats().lastError).toBeUndefined()
})

test('while the suite.receiver fails, lastError says why (5xx, network) and the next success clears it', async () => {
  suite.receiver.set({ down: true })
  const clock = createManualClock()
  const client = make({}, { clock })
  await client.start()
  client.logEvent('a')
  await client.flush()
  expect(client.getEventStats().lastError).toMatchObject({ code: 'HTTP', httpStatus: 503 })
  suite.receiver.set({ failureRate: 1, failures: ['reset'] })
  clock.fireNext()
  await until(() => client.getEventStats().lastError?.code === 'NETWORK', 'a network error')
  await until(() => clock.pending().length > 0, 'the retry after it')
  suite.receiver.set({})
  clock.fireNext()
  await until(() => client.getEventStats().sent === 1, 'delivery')
  expect(client.getEventStats().lastError).toBeUndefined()
})

test('an events URL built as `base/` + `/events` reaches /events, not a 404 for //events', async () => {
  const client = make({ url: `${suite.receiver.flagsUrl}/` + '/events' })
  client.logEvent('joined')
  await client.flush()
  expect(suite.receiver.requests.map((r) => r.path)).toEqual(['/events'])
  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 1, dropped: 0 })
})

test('normalizeUrl collapses slashes in the path only, and is idempotent', () => {
  expect(normalizeUrl('https://x.example//holdfast///v1/events')).toBe('https://x.example/holdfast/v1/events')
  expect(normalizeUrl('//cdn.example//e?next=https://a//b')).toBe('//cdn.example/e?next=https://a//b')
  expect(normalizeUrl('/relative//path#a//b')).toBe('/relative/path#a//b')
  const segment = fc.stringMatching(/^[a-z0-9.-]{0,6}$/)
  fc.assert(
    fc.property(fc.array(segment, { maxLength: 6 }), fc.array(fc.constantFrom('/', '//', '///'), { maxLength: 6 }), fc.stringMatching(/^(\?[a-z=/]{0,8})?$/), (parts, slashes, query) => {
      const path = parts.map((p, i) => (slashes[i] ?? '/') + p).join('')
      const url = `http://h.example:8080${path}${query}`
      const out = normalizeUrl(url)
      const parsed = new URL(out)
      expect(parsed.host).toBe('h.example:8080')
      expect(parsed.pathname).not.toMatch(/\/\//)
      expect(out.endsWith(query)).toBe(true)
      expect(normalizeUrl(out)).toBe(out)
    }),
  )
})
