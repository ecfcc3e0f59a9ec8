// The event pipeline is loaded on demand (lazyEventQueue.ts). These tests hold the chunk back with
// a loader they control, to pin down what the app sees before it arrives, at the hand-over, and
// when it cannot be loaded: counts, the maxQueued bound, and CONTRACT §6's "in storage within
// 100 ms" whatever the chunk does. The delivery itself goes to a real receiver on 127.0.0.1.
import { afterEach, beforeEach, expect, test } from 'vitest'
import { createMemoryStorage, type EventStats, type HoldfastEvent } from '@holdfast/core'
import { createEventQueue } from '../../packages/core/src/eventQueue'
import { createLazyEventQueue } from '../../packages/core/src/lazyEventQueue'
import { createSafeStorage } from '../../packages/core/src/storage'
import { startEventsReceiver, until, type EventsReceiver } from '../support/eventsReceiver'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'

let receiver: EventsReceiver
beforeEach(async () => {
  receiver = await startEventsReceiver()
})
afterEach(() => receiver.close())

type Pipeline = { createEventQueue: typeof createEventQueue }

/** A loader the test releases (or fails) by hand, counting how often it was asked. */
function heldLoader() {
  const attempts: { resolve: (m: Pipeline) => void; reject: (e: Error) => void }[] = []
  const loader: { load(): Promise<Pipeline>; loaded?: Pipeline } = {
    load: () => new Promise<Pipeline>((resolve, reject) => void attempts.push({ resolve, reject })),
  }
  return {
    loader,
    attempts,
    release: () => attempts.at(-1)!.resolve({ createEventQueue }),
    fail: () => attempts.at(-1)!.reject(new Error('chunk request failed')),
  }
}

function setup(maxQueued?: number, backend = createMemoryStorage()) {
  const logger = createTestLogger()
  const stats: EventStats[] = []
  // Timers fire only when the test says so: nothing can be written by the 50 ms write timer.
  const clock = createManualClock()
  const loader = heldLoader()
  const queue = createLazyEventQueue(
    {
      options: { url: receiver.url, maxQueued },
      storage: createSafeStorage(backend, uniqueStorageName('lazy'), logger, () => {}),
      storageName: uniqueStorageName('lazy'),
      fetch: (input, init) => globalThis.fetch(input, init),
      logger,
      clock,
      random: () => 0.5,
      requestTimeoutMs: 1000,
      onStats: (s) => void stats.push(s),
    },
    loader.loader,
  )
  const storedEvents = async () => (await backend.keys()).filter((key) => key.startsWith('holdfast:event:'))
  const storedNames = async () => Promise.all((await storedEvents()).sort().map(async (key) => ((await backend.get(key)) as HoldfastEvent).name))
  return { queue, loader, logger, stats, storedEvents, storedNames, clock, backend }
}

let seq = 0
const event = (name: string): HoldfastEvent => ({ id: `id-${++seq}`, type: 'custom', name, time: Date.now(), targetingKey: 'alice' })

test('before the pipeline arrives, events are counted at once and bounded by maxQueued; after it, the newest are sent in order', async () => {
  const { queue, loader, stats } = setup(3)
  for (const name of ['a', 'b', 'c', 'd', 'e']) queue.enqueue(event(name))

  expect(loader.attempts).toHaveLength(1) // asked for once, however many events
  expect(queue.stats()).toEqual({ queued: 3, sent: 0, dropped: 2, retries: 0 })
  expect(stats.at(-1)).toEqual({ queued: 3, sent: 0, dropped: 2, retries: 0 })

  loader.release()
  await queue.flush()
  expect(receiver.events().map((e) => e.name)).toEqual(['c', 'd', 'e'])
  // The drops before the hand-over stay counted.
  expect(queue.stats()).toEqual({ queued: 0, sent: 3, dropped: 2, retries: 0 })
  await queue.close()
})

test('held events are in storage within the write delay even while the chunk has not arrived, and the pipeline counts them once', async () => {
  const { queue, loader, clock, storedEvents } = setup()
  queue.enqueue(event('a'))
  queue.enqueue(event('b'))
  expect(await storedEvents()).toHaveLength(0)
  clock.advance(50) // the write delay; the chunk is still on its way
  await until(async () => (await storedEvents()).length === 2, 'the held events in storage', 1000)

  loader.release()
  await queue.start()
  // Known to the pipeline as stored: counted once, not twice, not lost.
  expect(queue.stats()).toMatchObject({ queued: 2, sent: 0 })
  await queue.flush()
  expect(receiver.events().map((e) => e.name)).toEqual(['a', 'b'])
  expect(queue.stats()).toMatchObject({ queued: 0, sent: 2 })
  expect(await storedEvents()).toHaveLength(0)
  await queue.close()
})

test('events the chunk arrives before they were written are written at once, not after another write delay', async () => {
  const { queue, loader, storedEvents } = setup()
  queue.enqueue(event('early'))
  queue.enqueue(event('earlier-still'))
  loader.release()
  // The manual clock never fires a write timer: only an immediate write gets them there.
  await until(async () => (await storedEvents()).length === 2, 'the handed-over events in storage', 1000)
  expect(receiver.requests).toHaveLength(0) // written, not sent: that waits for a flush trigger
  await queue.close()
})

test('the bound holds for written events too: the oldest leaves storage', async () => {
  const { queue, clock, storedNames } = setup(2)
  queue.enqueue(event('one'))
  queue.enqueue(event('two'))
  clock.advance(50)
  await until(async () => (await storedNames()).length === 2, 'two written', 1000)
  queue.enqueue(event('three'))
  clock.advance(50)
  await until(async () => (await storedNames()).join() === 'two,three', 'one gone, three written', 1000)
  expect(queue.stats()).toMatchObject({ queued: 2, dropped: 1 })
})

test('a page that goes away before the chunk arrived loses nothing: the next page sends what it logged', async () => {
  const backend = createMemoryStorage()
  const first = setup(undefined, backend)
  first.queue.enqueue(event('before-unload'))
  first.clock.advance(50)
  await until(async () => (await first.storedEvents()).length === 1, 'written by the stand-in', 1000)
  // The first page is gone: its chunk never arrived, close() never ran.

  const next = setup(undefined, backend)
  const started = next.queue.start()
  next.loader.release()
  await started
  await until(() => receiver.events().length === 1, 'the earlier page’s event sent on start')
  expect(receiver.events()[0]).toMatchObject({ name: 'before-unload' })
  await next.queue.close()
})

test('a pipeline that fails to load keeps the events, says so, and is tried again on the next flush', async () => {
  const { queue, loader, logger } = setup()
  queue.enqueue(event('kept'))
  const firstFlush = queue.flush()
  loader.fail()
  await firstFlush
  expect(logger.errors.some((m) => m.includes('loading the event pipeline failed') && m.includes('1 events wait'))).toBe(true)
  expect(queue.stats()).toMatchObject({ queued: 1, sent: 0 })

  const secondFlush = queue.flush()
  expect(loader.attempts).toHaveLength(2)
  loader.release()
  await secondFlush
  expect(receiver.events().map((e) => e.name)).toEqual(['kept'])
  expect(queue.stats()).toMatchObject({ queued: 0, sent: 1 })
  await queue.close()
})

test('start() resolves once the pipeline is attached, and a client that logged nothing and never started loads nothing on close', async () => {
  const idle = setup()
  await idle.queue.close()
  expect(idle.loader.attempts).toHaveLength(0)

  const { queue, loader } = setup()
  let attached = false
  const started = queue.start().then(() => (attached = true))
  await new Promise((resolve) => setTimeout(resolve, 20))
  expect(attached).toBe(false)
  loader.release()
  await started
  queue.enqueue(event('after-start'))
  await queue.flush()
  expect(receiver.events().map((e) => e.name)).toEqual(['after-start'])
  await queue.close()
})

test('close() before the pipeline arrived still sends what was logged', async () => {
  const { queue, loader } = setup()
  queue.enqueue(event('last-words'))
  const closing = queue.close()
  loader.release()
  await closing
  expect(receiver.events().map((e) => e.name)).toEqual(['last-words'])
})

test('a chunk that never arrives holds neither start(), flush() nor close() past requestTimeoutMs', async () => {
  const { queue, clock } = setup()
  queue.enqueue(event('stuck'))
  const settled: string[] = []
  const calls = [
    queue.start().then(() => settled.push('start')),
    queue.flush().then(() => settled.push('flush')),
    queue.close().then(() => settled.push('close')),
  ]
  await new Promise((resolve) => setTimeout(resolve, 20))
  expect(settled).toEqual([])
  clock.advance(1000) // requestTimeoutMs
  await Promise.all(calls)
  expect(settled.sort()).toEqual(['close', 'flush', 'start'])
})
