// Hostile conditions for the event queue: clocks that jump, storage that fails mid-burst, events
// that IndexedDB cannot clone or JSON cannot serialise, metadata mutated after logEvent. What the
// suite.receiver (real, on 127.0.0.1) ends up with and what getEventStats() says are what an app sees.
import { expect, test } from 'vitest'
import { type Clock, type FlagStorage } from '@holdfast/core'
import { createStore, del, entries, get, getMany, keys, set, setMany } from 'idb-keyval'
import { until } from '../support/eventsReceiver'
import { useEventsSuite } from '../support/eventsSuite'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'

const suite = useEventsSuite({ storage: 'events-hostile', requestTimeoutMs: 1000, backoff: { baseMs: 10, maxMs: 100 } })
const make = suite.make.bind(suite)


/** A manual clock that can also be set back (or ahead) by `skew` ms. */
function skewedClock() {
  const manual = createManualClock()
  const clock = { skew: 0, now: () => manual.now() + clock.skew, setTimeout: manual.setTimeout, clearTimeout: manual.clearTimeout, advance: manual.advance }
  return clock
}

const HOUR = 60 * 60 * 1000
const storedEventKeys = async (name: string) => (await keys(createStore(name, 'keyval'))).map(String).filter((k) => k.startsWith('holdfast:event:'))

test('a flush lease written while the clock ran hours ahead blocks delivery no longer than one lease period', async () => {
  const storageName = uniqueStorageName('events-lease-skew')
  // A tab whose clock ran three hours ahead took the lease, then died; the clock is right now.
  await set('holdfast:events-lease', { owner: 'ghost-tab', expires: Date.now() + 3 * HOUR }, createStore(storageName, 'keyval'))
  const clock = createManualClock()
  const client = make({}, { storageName, clock }) // requestTimeoutMs 1000: a lease period of 7 s
  client.logEvent('after-the-skew')
  await client.flush()
  // The lease is honoured at first: it might be a live tab whose clock is simply ahead.
  expect(suite.receiver.requests).toHaveLength(0)
  expect(client.getEventStats()).toMatchObject({ queued: 1, sent: 0 })

  clock.advance(7001) // one lease period, not three hours
  await client.flush()
  expect(suite.receiver.events().map((e) => e.name)).toEqual(['after-the-skew'])
  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 1, dropped: 0 })
}, 15_000)

test('maxQueued drops the oldest by the order events were logged, even after the clock was set back', async () => {
  const clock = skewedClock()
  const storageName = uniqueStorageName('events-order')
  const client = make({ maxQueued: 3 }, { storageName, clock })
  client.logEvent('a')
  client.logEvent('b')
  clock.advance(50)
  await until(async () => (await storedEventKeys(storageName)).length === 2, 'a and b in storage')
  clock.skew = -HOUR // NTP, or a user, sets the clock back an hour
  client.logEvent('c')
  client.logEvent('d')
  clock.advance(50)
  await until(async () => (await storedEventKeys(storageName)).length === 3, 'the bound applied in storage')

  expect(client.getEventStats()).toMatchObject({ queued: 3, dropped: 1 })
  await client.flush()
  // a went (the oldest logged), and the rest are sent in the order they were logged.
  expect(suite.receiver.events().map((e) => e.name)).toEqual(['b', 'c', 'd'])
})

test('events an earlier page left while its clock ran ahead are older than this page’s: the bound drops them first', async () => {
  const storageName = uniqueStorageName('events-order-pages')
  const ahead = skewedClock()
  ahead.skew = 3 * HOUR
  const earlier = make({}, { storageName, clock: ahead })
  for (const name of ['old-1', 'old-2', 'old-3']) earlier.logEvent(name)
  ahead.advance(50)
  await until(async () => (await storedEventKeys(storageName)).length === 3, 'the earlier page’s events in storage')
  suite.forget(earlier) // that page crashed: never closed

  const client = make({ maxQueued: 3 }, { storageName })
  await client.start()
  await until(() => client.getEventStats().queued === 3, 'the earlier page’s events counted')
  suite.receiver.set({ down: true }) // keep them queued while this page logs
  client.logEvent('new-1')
  client.logEvent('new-2')
  expect(client.getEventStats()).toMatchObject({ queued: 3, dropped: 2 })
  suite.receiver.set({})
  await client.flush()
  expect(suite.receiver.events().map((e) => e.name)).toEqual(['old-3', 'new-1', 'new-2'])
})

test('IndexedDB failing once mid-burst (QuotaExceededError): this page still sends every event, the counts add up, and the next page sends none again', async () => {
  const idb = createStore(uniqueStorageName('events-quota'), 'keyval')
  let eventWrites = 0
  const storage: FlagStorage = {
    get: (key) => get(key, idb),
    set: (key, value) => set(key, value, idb),
    del: (key) => del(key, idb),
    keys: () => keys(idb).then((list) => list.map(String)),
    getMany: (list) => getMany(list, idb),
    setMany: (list) => {
      if (list.some(([key]) => key.startsWith('holdfast:event:')) && ++eventWrites === 2)
        return Promise.reject(new DOMException('The quota has been exceeded.', 'QuotaExceededError'))
      return setMany(list, idb)
    },
  }
  const logger = createTestLogger()
  const client = make({ batchSize: 1000, flushIntervalMs: 3_600_000 }, { storage, logger })
  await client.start()
  for (let i = 0; i < 20; i++) client.logEvent('burst', { value: i })
  await until(async () => (await keys(idb)).length >= 20, 'the first 20 in IndexedDB')
  for (let i = 20; i < 40; i++) client.logEvent('burst', { value: i }) // this write fails
  // The write fails and the page moves to memory, then at once back to IndexedDB (the retry right
  // after a failover finds it answering): the status may say `memory` only for a moment.
  await until(() => eventWrites >= 2 && logger.warnings.some((m) => m.includes('running on memory')), 'the move to memory')
  for (let i = 40; i < 50; i++) client.logEvent('burst', { value: i })
  await client.flush()

  expect(suite.receiver.events().map((e) => e.value)).toEqual(Array.from({ length: 50 }, (_, i) => i))
  const stats = client.getEventStats()
  expect(stats).toMatchObject({ queued: 0, sent: 50, dropped: 0 })
  expect(stats.queued + stats.sent + stats.dropped).toBe(50)
  // What reached IndexedDB before it failed is deleted there too once sent (a full quota still
  // allows deletions): the next page finds nothing to send again.
  await until(async () => (await keys(idb)).filter((key) => String(key).startsWith('holdfast:event:')).length === 0, 'the sent events gone from IndexedDB')
  await client.close()
  const next = make({ batchSize: 1000, flushIntervalMs: 3_600_000 }, { storage, logger: createTestLogger() })
  await next.start()
  await next.flush()
  expect(suite.receiver.events()).toHaveLength(50)
  expect(next.getEventStats()).toMatchObject({ queued: 0, sent: 0 })
  await next.close()
})

test('an event IndexedDB cannot clone is that event’s problem: the page stays on IndexedDB', async () => {
  const storageName = uniqueStorageName('events-clone')
  const logger = createTestLogger()
  const client = make({}, { storageName, logger })
  await client.start()
  client.logEvent('fine-1')
  // A JavaScript caller (no types) hands over a function: structured clone refuses those.
  client.logEvent('odd', { value: (() => 1) as never, metadata: { handler: (() => 2) as never, plan: 'pro' } })
  client.logEvent('fine-2')
  await until(async () => (await storedEventKeys(storageName)).length === 3, 'all three in IndexedDB')

  expect(client.getStatus().storage).toBe('indexeddb')
  expect(logger.warnings.some((m) => m.includes('"handler" left out'))).toBe(true)
  await client.flush()
  expect(suite.receiver.events().map((e) => [e.name, e.metadata])).toEqual([
    ['fine-1', undefined],
    ['odd', { plan: 'pro' }],
    ['fine-2', undefined],
  ])
  expect(client.getStatus().storage).toBe('indexeddb')
})

test('a custom value JSON cannot serialise (BigInt, cycle, throwing toJSON) is left out of its event with a warning; an event that cannot be read (metadata whose getter throws) is dropped alone and counted, never with its batch', async () => {
  const logger = createTestLogger()
  const client = make({}, { logger })
  const cycle: Record<string, unknown> = {}
  cycle.self = cycle
  client.logEvent('before')
  client.logEvent('bigint', { value: 10n as never })
  client.logEvent('cycle', { value: cycle as never })
  client.logEvent('tojson', { value: { toJSON: () => { throw new Error('no') } } as never })
  client.logEvent('getter', { metadata: Object.defineProperty({}, 'plan', { enumerable: true, get: () => { throw new Error('no') } }) })
  client.logEvent('after')
  expect(client.getEventStats()).toMatchObject({ queued: 5, dropped: 1 })
  await client.flush()

  expect(suite.receiver.requests).toHaveLength(1)
  expect(suite.receiver.events().map((e) => [e.name, 'value' in e])).toEqual([['before', false], ['bigint', false], ['cycle', false], ['tojson', false], ['after', false]])
  for (const name of ['bigint', 'cycle', 'tojson']) expect(logger.warnings.filter((m) => m.includes(`event "${name}": value left out`))).toHaveLength(1)
  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 5, dropped: 1 })
})

test('a stored event that cannot be serialised (an older page wrote it) is dropped alone; its batch goes out', async () => {
  const storageName = uniqueStorageName('events-stored-bigint')
  const event = (n: number, value: unknown) => ({ id: `e-${n}`, type: 'custom', name: `e${n}`, time: 1_700_000_000_000 + n, value })
  await setMany(
    [
      ['holdfast:event:001700000000001:000000000:a', event(1, 1)],
      ['holdfast:event:001700000000002:000000000:b', event(2, 2n)],
      ['holdfast:event:001700000000003:000000000:c', event(3, 3)],
    ],
    createStore(storageName, 'keyval'),
  )
  const client = make({}, { storageName })
  await client.start()
  await until(() => client.getEventStats().sent === 2, 'the two serialisable events')
  expect(suite.receiver.events().map((e) => e.id)).toEqual(['e-1', 'e-3'])
  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 2, dropped: 1 })
  await until(async () => (await storedEventKeys(storageName)).length === 0, 'no event left in storage')
})

test('metadata is copied at logEvent: mutating it afterwards changes nothing that is stored or sent', async () => {
  const storageName = uniqueStorageName('events-copy')
  const client = make({}, { storageName })
  const metadata = { plan: 'pro', seats: 3 }
  client.logEvent('upgrade', { metadata })
  metadata.plan = 'free'
  metadata.seats = 0
  await until(async () => (await storedEventKeys(storageName)).length === 1, 'written')
  const [[, stored]] = (await entries(createStore(storageName, 'keyval'))).filter(([k]) => String(k).startsWith('holdfast:event:'))
  expect(stored).toMatchObject({ metadata: { plan: 'pro', seats: 3 } })
  await client.flush()
  expect(suite.receiver.events()[0]).toMatchObject({ name: 'upgrade', metadata: { plan: 'pro', seats: 3 } })
})

test('a clock reading NaN or negative still gives every event a key, in log order', async () => {
  const manual = createManualClock()
  let broken = false
  const clock: Clock = { now: () => (broken ? Number.NaN : manual.now()), setTimeout: manual.setTimeout, clearTimeout: manual.clearTimeout }
  const client = make({}, { clock })
  client.logEvent('one')
  broken = true
  client.logEvent('two')
  client.logEvent('three')
  broken = false
  await client.flush()
  expect(suite.receiver.events().map((e) => e.name)).toEqual(['one', 'two', 'three'])
})

test('numeric events options that are NaN, 0, negative or Infinity fall back to their defaults with a warning', async () => {
  const clock = createManualClock()
  const logger = createTestLogger()
  const client = make({ batchSize: Number.NaN, flushIntervalMs: 0, maxQueued: -5 }, { clock, logger })
  expect(logger.warnings).toHaveLength(0) // nothing is read before the queue is used
  await client.start()
  await until(() => clock.pending().includes(10_000), 'delivery loaded and its interval running')
  expect(logger.warnings.filter((m) => /events\.(batchSize|flushIntervalMs|maxQueued) .* using/.test(m))).toHaveLength(3)
  for (let i = 0; i < 5; i++) client.logEvent('e', { value: i })
  // maxQueued is 10,000 again (nothing dropped), batchSize 100 (nothing sent yet), the interval 10 s.
  expect(client.getEventStats()).toMatchObject({ queued: 5, dropped: 0 })
  clock.advance(9_000)
  await new Promise((resolve) => setTimeout(resolve, 50))
  expect(suite.receiver.requests).toHaveLength(0)
  clock.advance(1_000)
  await until(() => client.getEventStats().sent === 5, 'the 10 s interval flush')
})

test('logEvent options that are null (a plain-JS caller) or throw when read never throw into the app; the others are sent', async () => {
  const client = make()
  await client.start()
  const logEvent = client.logEvent as (name: string, options?: unknown) => void
  const revocable = Proxy.revocable({}, {})
  revocable.revoke()
  const throwing = Object.defineProperty({}, 'value', { enumerable: true, get: () => { throw new Error('boom') } })
  expect(() => logEvent('null-options', null)).not.toThrow()
  expect(() => logEvent('revoked-options', revocable.proxy)).not.toThrow()
  expect(() => logEvent('throwing-options', throwing)).not.toThrow()
  client.logEvent('plain', { value: 1 })
  await client.flush()
  expect(suite.receiver.events().map((e) => e.name)).toEqual(['null-options', 'plain'])
  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 2 })
})
