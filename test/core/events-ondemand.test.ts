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

// A deploy removed the old hashed chunk, a CDN answered 404, or the page was offline at first use.
// Before, getEventStats() said only `queued` (the why was in the log alone), and every event logged
// past a full batch asked for the missing chunk again.
test('a delivery chunk that fails to load: the stats say why, the events stay stored, and the chunk is asked for again on the backoff, then they are sent', async () => {
  const { queue, loader, logger, stats, clock, storedKeys } = setup()
  queue.start()
  await until(() => loader.attempts.length === 1, 'the chunk asked for by start()')
  queue.enqueue(event('kept'))
  loader.fail()
  await until(() => queue.stats().lastError !== undefined, 'the stats to say why nothing is sent', 2000)
  expect(queue.stats()).toMatchObject({ queued: 1, sent: 0, lastError: { code: 'NETWORK', message: expect.stringContaining('loading event delivery failed') } })
  expect(stats.at(-1)?.lastError).toEqual(queue.stats().lastError) // listeners were told
  expect(logger.errors.some((m) => m.includes('loading event delivery failed'))).toBe(true)

  // During the backoff neither a full batch (every event past it a trigger) nor flush() asks for
  // the chunk again: the events wait in storage.
  for (let i = 0; i < 149; i++) queue.enqueue(event(`e${i}`))
  await queue.flush()
  expect(loader.attempts).toHaveLength(1)
  expect(await storedKeys()).toHaveLength(150)

  // The backoff (base 1 s, jitter 0.5: 750 ms) ends: asked again by itself; failing again, the
  // next wait is the next step (1,500 ms), not a loop.
  expect(clock.pending()).toContain(750)
  clock.advance(750)
  await until(() => loader.attempts.length === 2, 'the second load, on the backoff')
  loader.fail()
  await until(() => clock.pending().includes(1500), 'the next load waiting for the next step')
  clock.advance(1500)
  await until(() => loader.attempts.length === 3, 'the third load')
  loader.release()
  // Loaded: what is queued (a full batch and more) goes at once.
  await until(() => receiver.events().length === 150, 'the kept events sent')
  await until(() => queue.stats().queued === 0, 'the queue emptied')
  expect(queue.stats()).toMatchObject({ sent: 150, dropped: 0 })
  expect(queue.stats().lastError).toBeUndefined()
  await queue.close()
})

// In Node (server rendering, a CLI, a test runner) that timer held the process for the backoff
// after close() (close-exit.test.ts runs it in a child process).
test('close() while a failed load of the chunk waits for its retry: the retry timer goes too', async () => {
  const { queue, loader, clock } = setup()
  queue.start()
  queue.enqueue(event('kept'))
  await until(() => loader.attempts.length === 1, 'the chunk asked for by start()')
  loader.fail()
  await until(() => queue.stats().lastError !== undefined, 'the failed load')
  expect(clock.pending()).toEqual([750]) // the next load, on the backoff
  await queue.close()
  // Before: [750].
  expect(clock.pending()).toEqual([])
  expect(loader.attempts).toHaveLength(1)
})

// The same timer, when the load fails only after close() began (close() waits for the chunk it
// needs to send what was logged, requestTimeoutMs at most): the retry was set after close() had
// cleared timers, and held a Node process for the backoff.
test('close() while the chunk is still loading, and the load then fails: no retry timer is left behind', async () => {
  const { queue, loader, clock } = setup()
  queue.start()
  queue.enqueue(event('kept'))
  await until(() => loader.attempts.length === 1, 'the chunk asked for by start()')
  const closing = queue.close()
  loader.fail()
  await closing
  // Before: [750] (the next load, on the backoff) after close() had returned.
  expect(clock.pending()).toEqual([])
  expect(loader.attempts).toHaveLength(1)
})

// Later still: close() gave up on the chunk (requestTimeoutMs) and returned; then the load failed.
test('a chunk load that fails after close() gave up on it sets no retry timer', async () => {
  const { queue, loader, clock, storedKeys } = setup()
  queue.start()
  queue.enqueue(event('kept'))
  await until(() => loader.attempts.length === 1, 'the chunk asked for by start()')
  const closing = queue.close()
  await until(async () => (await storedKeys()).length === 1, 'written by close() while it waits for the chunk', 1000)
  clock.advance(1000) // requestTimeoutMs: close() stops waiting
  await closing
  loader.fail()
  await until(() => queue.stats().lastError !== undefined, 'the late failure')
  // Before: [750], a retry set on a closed queue; in Node it held the process for the backoff.
  expect(clock.pending()).toEqual([])
  expect(loader.attempts).toHaveLength(1)
  expect(await storedKeys()).toHaveLength(1)
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
