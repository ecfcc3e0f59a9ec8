// Event delivery against a real suite.receiver that fails: random 500s, resets and 429s, 413 for big
// batches, 400 for a poison batch, a full queue, failing storage. What the suite.receiver ends up with
// and what `getEventStats()` says are what an app (and its analytics) would see.
import { expect, test } from 'vitest'
import { type FlagStorage } from '@holdfast/core'
import { createStore, keys } from 'idb-keyval'
import { until } from '../support/eventsReceiver'
import { useEventsSuite } from '../support/eventsSuite'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'
import { timed } from '../support/freezes'

const suite = useEventsSuite({ storage: 'events', requestTimeoutMs: 2000, backoff: { baseMs: 10, maxMs: 100 } })
const make = suite.make.bind(suite)


const values = () => suite.receiver.events().map((e) => e.value)

test('1,000 events through a suite.receiver failing 30% of requests all arrive, each accepted once, none dropped', async () => {
  suite.receiver.set({ failureRate: 0.3, seed: 7 })
  const client = make({ batchSize: 50, flushIntervalMs: 200 })
  await client.start()
  for (let i = 0; i < 1000; i++) client.logEvent('click', { value: i })

  // No flush() call: the batch size, the interval and the retry timers do the work.
  await until(() => client.getEventStats().queued === 0 && suite.receiver.events().length === 1000, 'all 1,000 events', 30_000)
  const accepted = suite.receiver.acceptedTimes()
  expect(accepted.size).toBe(1000)
  expect([...accepted.values()].filter((n) => n !== 1)).toEqual([])
  expect(new Set(values())).toEqual(new Set(Array.from({ length: 1000 }, (_, i) => i)))
  // The suite.receiver really failed, in every way it can.
  const outcomes = new Set(suite.receiver.requests.map((r) => r.outcome))
  expect([...outcomes].sort()).toEqual([202, 429, 500, 'reset'].sort())
  const stats = client.getEventStats()
  expect(stats).toMatchObject({ queued: 0, sent: 1000, dropped: 0 })
  // Every event that was in a failed request was sent again, and counted.
  const failedIds = new Set(suite.receiver.requests.filter((r) => r.outcome !== 202).flatMap((r) => r.ids))
  expect(stats.retries).toBeGreaterThanOrEqual(failedIds.size)
}, 40_000)

test('the request is a JSON POST of {"events": [...]} with the configured headers', async () => {
  const client = make({}, { headers: () => ({ Authorization: 'Bearer t0k3n' }) })
  client.logEvent('purchase', { value: 42, metadata: { plan: 'pro', trial: false } })
  await client.flush()

  expect(suite.receiver.requests).toHaveLength(1)
  const request = suite.receiver.requests[0]
  expect(request.headers['content-type']).toBe('application/json')
  expect(request.headers.authorization).toBe('Bearer t0k3n')
  const [event] = suite.receiver.events()
  expect(event).toEqual({
    id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
    type: 'custom',
    name: 'purchase',
    time: expect.any(Number),
    targetingKey: 'alice',
    value: 42,
    metadata: { plan: 'pro', trial: false },
  })
  expect(client.getEventStats()).toEqual({ queued: 0, sent: 1, dropped: 0, retries: 0, retriedRequests: 0 })
})

test('413 splits the batch in halves until the suite.receiver takes it; nothing is dropped', async () => {
  suite.receiver.set({ maxEvents: 4 })
  const client = make({ batchSize: 20 })
  for (let i = 0; i < 20; i++) client.logEvent('view', { value: i })
  await client.flush()

  expect(suite.receiver.events()).toHaveLength(20)
  expect(suite.receiver.requests.filter((r) => r.outcome === 413).length).toBeGreaterThan(0)
  expect(Math.max(...suite.receiver.requests.filter((r) => r.outcome === 202).map((r) => r.ids.length))).toBeLessThanOrEqual(4)
  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 20, dropped: 0 })
})

test('after a 413 the page keeps the batch size that fit: a backlog is not two refused uploads per delivered batch', async () => {
  suite.receiver.set({ maxEvents: 8 })
  const client = make({ batchSize: 32 })
  for (let i = 0; i < 96; i++) client.logEvent('view', { value: i })
  await client.flush()
  for (let i = 96; i < 128; i++) client.logEvent('view', { value: i })
  await client.flush()

  expect(values()).toEqual(Array.from({ length: 128 }, (_, i) => i))
  // 32 → 413, 16 → 413, then 8 at a time, in this pass and the next. Before, every batch of 32
  // was refused again, with one of its halves: 15 refused uploads for these 128 events.
  expect(suite.receiver.requests.filter((r) => r.outcome === 413).map((r) => r.ids.length)).toEqual([32, 16])
  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 128, dropped: 0 })
})

test('the batch size a 413 taught grows back once the receiver takes more: doubled after 16 deliveries in a row, up to batchSize', async () => {
  suite.receiver.set({ maxEvents: 8 })
  const client = make({ batchSize: 32 })
  for (let i = 0; i < 32; i++) client.logEvent('view', { value: i })
  await client.flush()
  // The receiver's cap is raised (a proxy's body limit fixed). Before: 8 events a request for the
  // rest of the page, four times the requests a receiver had to take, for good.
  suite.receiver.set({})
  const before = suite.receiver.requests.length
  for (let i = 32; i < 500; i++) client.logEvent('view', { value: i })
  await client.flush()

  expect(values()).toEqual(Array.from({ length: 500 }, (_, i) => i))
  const sizes = suite.receiver.requests.slice(before).map((r) => r.ids.length)
  // 8 × 12 (16 in a row with the first four), 16 × 16, then 32: 32 requests where it was 59.
  expect(Math.max(...sizes)).toBe(32)
  expect(sizes.length).toBeLessThan(40)
  expect(suite.receiver.requests.slice(before).filter((r) => r.outcome === 413)).toEqual([])
  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 500, dropped: 0 })
})

test('a single event still too large (413) is dropped and counted; the rest of its batch arrives', async () => {
  suite.receiver.set({ tooLargeName: 'huge' })
  const client = make()
  client.logEvent('a')
  client.logEvent('huge')
  client.logEvent('b')
  await client.flush()

  expect(suite.receiver.events().map((e) => e.name)).toEqual(['a', 'b'])
  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 2, dropped: 1 })
  // [a, huge, b] → [a, huge] → [huge], and then never again.
  expect(suite.receiver.requests.filter((r) => r.names.includes('huge'))).toHaveLength(3)
  await client.flush()
  expect(suite.receiver.requests.filter((r) => r.names.includes('huge'))).toHaveLength(3)
})

test('a batch the suite.receiver rejects with 400 is dropped and counted, and later batches still go out', async () => {
  suite.receiver.set({ poisonName: 'poison' })
  const client = make({ batchSize: 5 })
  for (const name of ['a1', 'a2', 'poison', 'a4', 'a5', 'b1', 'b2', 'b3', 'b4', 'b5']) client.logEvent(name)
  await client.flush()

  expect(suite.receiver.events().map((e) => e.name)).toEqual(['b1', 'b2', 'b3', 'b4', 'b5'])
  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 5, dropped: 5 })
  client.logEvent('c1')
  await client.flush()
  expect(suite.receiver.events().map((e) => e.name)).toContain('c1')
  expect(suite.receiver.requests.filter((r) => r.names.includes('poison'))).toHaveLength(1)
})

test('maxQueued keeps the newest events: the oldest are dropped, counted and deleted from storage', async () => {
  const storageName = uniqueStorageName('events-bound')
  const client = make({ maxQueued: 10 }, { storageName })
  for (let i = 0; i < 8; i++) client.logEvent('e', { value: i })
  await new Promise((resolve) => setTimeout(resolve, 150)) // persisted by now
  for (let i = 8; i < 15; i++) client.logEvent('e', { value: i })
  await new Promise((resolve) => setTimeout(resolve, 150))

  expect(client.getEventStats()).toMatchObject({ queued: 10, dropped: 5 })
  const stored = (await keys(createStore(storageName, 'keyval'))).filter((k) => String(k).startsWith('holdfast:event:'))
  expect(stored).toHaveLength(10)
  await client.flush()
  expect(values()).toEqual([5, 6, 7, 8, 9, 10, 11, 12, 13, 14])
  expect(client.getEventStats()).toEqual({ queued: 0, sent: 10, dropped: 5, retries: 0, retriedRequests: 0 })
})

test('maxQueued also holds when more than maxQueued are logged at once', async () => {
  const client = make({ maxQueued: 3 })
  for (let i = 0; i < 6; i++) client.logEvent('e', { value: i })
  expect(client.getEventStats()).toMatchObject({ queued: 3, dropped: 3 })
  await client.flush()
  expect(values()).toEqual([3, 4, 5])
})

test('Retry-After is honoured: no attempt before it, then the retry delivers', async () => {
  suite.receiver.set({ failureRate: 1, failures: ['429-1'] })
  const clock = createManualClock()
  const client = make({}, { clock })
  await client.start() // retries are timers, and timers run from start()
  client.logEvent('a')
  await client.flush()
  expect(suite.receiver.requests).toHaveLength(1)
  expect(clock.pending()).toContain(1000)

  await client.flush() // the server asked for a second: flush() obeys too
  expect(suite.receiver.requests).toHaveLength(1)
  suite.receiver.set({})
  clock.advance(1000)
  await until(() => client.getEventStats().sent === 1, 'the retry')
  expect(suite.receiver.events()).toHaveLength(1)
  expect(client.getEventStats()).toEqual({ queued: 0, sent: 1, dropped: 0, retries: 1, retriedRequests: 1 })
})

test('5xx backs off exponentially (backoff options, jitter from `random`), and success resets it', async () => {
  suite.receiver.set({ down: true })
  const clock = createManualClock()
  const logger = createTestLogger()
  const client = make({ backoff: { baseMs: 100, maxMs: 300 } }, { clock, random: () => 1, logger })
  await client.start()
  client.logEvent('a')
  await client.flush()
  const delays: number[] = []
  for (let attempt = 1; attempt <= 3; attempt++) {
    delays.push(clock.fireNext()!)
    // Each failure is logged once, after its retry was scheduled.
    await until(() => logger.warnings.length === attempt + 1, `failure ${attempt + 1}`)
  }
  expect(delays).toEqual([100, 200, 300])
  expect(logger.warnings.at(-1)).toMatch(/\[holdfast\] sending events failed \(HTTP\).*next try in 300 ms/)
  suite.receiver.set({})
  clock.fireNext()
  await until(() => client.getEventStats().sent === 1, 'delivery')
  expect(client.getEventStats()).toEqual({ queued: 0, sent: 1, dropped: 0, retries: 4, retriedRequests: 4 })
  // No retry left, only the flush interval ticking on.
  await until(() => clock.pending().join() === '10000', 'the interval, and nothing else, pending')
})

test('stats move as events are logged and sent, and subscribers are told', async () => {
  const client = make()
  const seen: string[] = []
  client.subscribe(() => {
    const s = client.getEventStats()
    seen.push(`${s.queued}/${s.sent}`)
  })
  client.logEvent('a')
  client.logEvent('b')
  expect(client.getEventStats()).toMatchObject({ queued: 2, sent: 0 })
  await client.flush()
  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 2 })
  expect(seen).toContain('1/0')
  expect(seen).toContain('2/0')
  expect(seen.at(-1)).toBe('0/2')
})

test('when storage fails, events stay in memory, are all delivered, and the status says memory', async () => {
  const broken: FlagStorage = {
    get: () => Promise.reject(new Error('quota')),
    set: () => Promise.reject(new Error('quota')),
    del: () => Promise.reject(new Error('quota')),
    keys: () => Promise.reject(new Error('quota')),
  }
  const client = make({}, { storage: broken })
  // Logged before anything else touched storage, so writing them is the first failure.
  for (let i = 0; i < 5; i++) client.logEvent('e', { value: i })
  await client.flush()
  await client.start()

  expect(values()).toEqual([0, 1, 2, 3, 4])
  expect(client.getStatus().storage).toBe('memory')
  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 5, dropped: 0 })
})

test('flush() and close() never reject, even with the suite.receiver unreachable; the events stay queued', async () => {
  const client = make({}, { requestTimeoutMs: 300 })
  await suite.receiver.close()
  client.logEvent('a')
  await expect(client.flush()).resolves.toBeUndefined()
  expect(client.getEventStats()).toMatchObject({ queued: 1, sent: 0, dropped: 0 })
  const closing = await timed(() => client.close())
  expect(closing.value).toBeUndefined()
  expect(closing.ms).toBeLessThan(1000)
  await suite.restartReceiver() // for afterEach
})

test.each([200, 201, 204])('any 2xx (%i) accepts the whole batch', async (okStatus) => {
  suite.receiver.set({ okStatus })
  const client = make()
  for (let i = 0; i < 3; i++) client.logEvent('e', { value: i })
  await client.flush()
  expect(client.getEventStats()).toEqual({ queued: 0, sent: 3, dropped: 0, retries: 0, retriedRequests: 0 })
  await client.flush()
  expect(suite.receiver.requests).toHaveLength(1)
})
