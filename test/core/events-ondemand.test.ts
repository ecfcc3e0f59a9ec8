// The event store loads with the client; only delivery is a chunk loaded on demand. These tests
// hold that chunk back with a loader they control, to pin down what the app sees before it
// arrives, when it arrives, and when it cannot be loaded: the events are copied, counted, bounded
// and in storage within 100 ms without it, and nothing waits on it past requestTimeoutMs.
// Delivery itself goes to a real receiver on 127.0.0.1.
import { afterEach, beforeEach, expect, test } from 'vitest'
import { createMemoryStorage, type EventStats, type HoldfastEvent } from '@holdfast/core'
import { createEventQueue, type DeliveryLoader } from '../../packages/core/src/events/eventQueue'
import { createDelivery } from '../../packages/core/src/events/delivery/delivery'
import { createSafeStorage } from '../../packages/core/src/platform/storage'
import { startEventsReceiver, until, type EventsReceiver } from '../support/eventsReceiver'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'

let receiver: EventsReceiver
beforeEach(async () => {
  receiver = await startEventsReceiver()
})
afterEach(() => receiver.close())

/** A loader the test releases (or fails) by hand, counting how often it was asked. */
function heldLoader() {
  const attempts: { resolve: (m: { createDelivery: typeof createDelivery }) => void; reject: (e: Error) => void }[] = []
  const load: DeliveryLoader = () => new Promise((resolve, reject) => void attempts.push({ resolve, reject }))
  return {
    load,
    attempts,
    release: () => attempts.at(-1)!.resolve({ createDelivery }),
    fail: () => attempts.at(-1)!.reject(new Error('chunk request failed')),
  }
}

function setup(maxQueued?: number, backend = createMemoryStorage(), url = receiver.url) {
  const logger = createTestLogger()
  const stats: EventStats[] = []
  const clock = createManualClock()
  const loader = heldLoader()
  const queue = createEventQueue(
    {
      options: { url, maxQueued },
      storage: createSafeStorage(backend, uniqueStorageName('ondemand'), logger, () => {}),
      storageName: uniqueStorageName('ondemand'),
      fetch: (input: RequestInfo | URL, init?: RequestInit) => globalThis.fetch(input, init),
      logger,
      clock,
      environment: { online: () => true, visible: () => true, listen: () => () => {} },
      random: () => 0.5,
      requestTimeoutMs: 1000,
      onStats: (s: EventStats) => void stats.push(s),
    },
    loader.load,
  )
  const storedKeys = async () => (await backend.keys()).filter((key) => key.startsWith('holdfast:event:')).sort()
  // A key deleted between the listing and the read is simply gone.
  const storedNames = async () =>
    (await Promise.all((await storedKeys()).map(async (key) => (await backend.get(key)) as HoldfastEvent | undefined))).flatMap((e) => (e ? [e.name] : []))
  return { queue, loader, logger, stats, storedKeys, storedNames, clock, backend }
}

let seq = 0
const event = (name: string): HoldfastEvent => ({ id: `id-${++seq}`, type: 'custom', name, time: Date.now(), targetingKey: 'alice' })

test('without the delivery chunk, events are counted at once, bounded by maxQueued, and in storage with no timer run', async () => {
  const { queue, loader, stats, storedNames } = setup(3)
  queue.start()
  for (const name of ['a', 'b', 'c', 'd', 'e']) queue.enqueue(event(name))

  await until(() => loader.attempts.length > 0, 'the chunk asked for')
  expect(loader.attempts).toHaveLength(1) // asked for once, by start(), however many events
  expect(queue.stats()).toEqual({ queued: 3, sent: 0, dropped: 2, retries: 0, retriedRequests: 0 })
  expect(stats.at(-1)).toEqual(queue.stats())
  // Written when the logging task ended, on no timer (the manual clock never moved); the chunk is still on its way.
  await until(async () => (await storedNames()).join() === 'c,d,e', 'the newest three in storage', 1000)

  loader.release()
  await queue.flush()
  expect(receiver.events().map((e) => e.name)).toEqual(['c', 'd', 'e'])
  expect(queue.stats()).toEqual({ queued: 0, sent: 3, dropped: 2, retries: 0, retriedRequests: 0 })
  expect(await storedNames()).toEqual([])
  await queue.close()
})

test('the bound holds for written events too: the oldest leaves storage', async () => {
  const { queue, storedNames } = setup(2)
  queue.enqueue(event('one'))
  queue.enqueue(event('two'))
  await until(async () => (await storedNames()).length === 2, 'two written', 1000)
  queue.enqueue(event('three'))
  await until(async () => (await storedNames()).join() === 'two,three', 'one gone, three written', 1000)
  expect(queue.stats()).toMatchObject({ queued: 2, dropped: 1 })
})

test('a page whose delivery never arrived loses nothing: the next page sends what it logged', async () => {
  const backend = createMemoryStorage()
  const first = setup(undefined, backend)
  first.queue.enqueue(event('before-unload'))
  await until(async () => (await first.storedKeys()).length === 1, 'written without delivery', 1000)
  // The first page is gone: its chunk never arrived, close() never ran.

  const next = setup(undefined, backend)
  next.queue.start()
  await until(() => next.loader.attempts.length === 1, 'the chunk asked for by start()')
  next.loader.release()
  await until(() => receiver.events().length === 1, 'the earlier page’s event sent on start')
  expect(receiver.events()[0]).toMatchObject({ name: 'before-unload' })
  await until(() => next.queue.stats().sent === 1 && next.queue.stats().queued === 0, 'counted as sent')
  await next.queue.close()
})

test('a delivery chunk that fails to load keeps the events, says so, and is tried again on the next flush', async () => {
  const { queue, loader, logger } = setup()
  queue.enqueue(event('kept'))
  const firstFlush = queue.flush()
  await until(() => loader.attempts.length === 1, 'the first load')
  loader.fail()
  await firstFlush
  expect(logger.errors.some((m) => m.includes('loading event delivery failed') && m.includes('1 events wait'))).toBe(true)
  expect(queue.stats()).toMatchObject({ queued: 1, sent: 0 })

  const secondFlush = queue.flush()
  await until(() => loader.attempts.length === 2, 'the second load')
  loader.release()
  await secondFlush
  expect(receiver.events().map((e) => e.name)).toEqual(['kept'])
  expect(queue.stats()).toMatchObject({ queued: 0, sent: 1 })
  await queue.close()
})

test('a client that logged nothing loads nothing on close; close() before delivery arrived still sends what was logged', async () => {
  const idle = setup()
  await idle.queue.close()
  expect(idle.loader.attempts).toHaveLength(0)

  const { queue, loader } = setup()
  queue.enqueue(event('last-words'))
  const closing = queue.close()
  await until(() => loader.attempts.length === 1, 'the load asked by close()')
  loader.release()
  await closing
  expect(receiver.events().map((e) => e.name)).toEqual(['last-words'])
})

test('a chunk that never arrives holds neither flush() nor close() past requestTimeoutMs, and the events stay stored', async () => {
  const { queue, clock, storedKeys } = setup()
  queue.start()
  queue.enqueue(event('stuck'))
  const settled: string[] = []
  const calls = [queue.flush().then(() => settled.push('flush')), queue.close().then(() => settled.push('close'))]
  await until(async () => (await storedKeys()).length === 1, 'written by flush/close without delivery', 1000)
  expect(settled).toEqual([])
  clock.advance(1000) // requestTimeoutMs
  await Promise.all(calls)
  expect(settled.sort()).toEqual(['close', 'flush'])
  expect(await storedKeys()).toHaveLength(1)
})

test('a missing events.url is reported once, when delivery loads, and the events stay stored', async () => {
  const { queue, loader, logger, storedNames } = setup(undefined, undefined, '')
  const missing = () => logger.errors.filter((m) => m.includes('events.url is missing'))
  queue.start()
  queue.enqueue(event('kept'))
  await until(() => loader.attempts.length === 1, 'the chunk asked for by start()')
  loader.release()
  await until(() => missing().length > 0, 'the missing URL reported')
  await until(async () => (await storedNames()).join() === 'kept', 'the event in storage', 1000)
  await queue.flush()
  expect(missing()).toHaveLength(1)
  expect(await storedNames()).toEqual(['kept'])
  expect(receiver.events()).toEqual([])
  await queue.close()
})
