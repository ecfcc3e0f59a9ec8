// Events outlive the page: they are in IndexedDB within 100 ms of being logged, and the next
// page on the same database (same origin, same storageName) sends what an earlier one left.
import { afterEach, beforeEach, expect, test } from 'vitest'
import { createClient, type ClientOptions, type EventOptions, type FlagClient } from '@holdfast/core'
import { createStore, entries, setMany } from 'idb-keyval'
import { startEventsReceiver, until, type EventsReceiver } from '../support/eventsReceiver'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'
import { fakeEnvironment } from '../support/environment'
import { timed } from '../support/freezes'

let receiver: EventsReceiver
const clients: FlagClient[] = []
beforeEach(async () => {
  receiver = await startEventsReceiver()
})
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await receiver.close()
})

function make(storageName: string, events: Partial<EventOptions> = {}, options: Partial<ClientOptions> = {}) {
  const client = createClient({
    url: receiver.flagsUrl,
    context: { targetingKey: 'alice' },
    storageName,
    logger: createTestLogger(),
    requestTimeoutMs: 500,
    ...options,
    events: { url: receiver.url, backoff: { baseMs: 10, maxMs: 100 }, ...events },
  })
  clients.push(client)
  return client
}

async function storedEvents(storageName: string) {
  return (await entries(createStore(storageName, 'keyval'))).filter(([key]) => String(key).startsWith('holdfast:event:'))
}

test('a logged event is in IndexedDB within 100 ms, without any flush', async () => {
  const name = uniqueStorageName('events-write')
  const client = make(name)
  client.logEvent('signup', { value: 'pro' })
  await new Promise((resolve) => setTimeout(resolve, 100))

  const stored = await storedEvents(name)
  expect(stored).toHaveLength(1)
  expect(stored[0][1]).toMatchObject({ type: 'custom', name: 'signup', value: 'pro', targetingKey: 'alice' })
  expect(receiver.requests).toHaveLength(0)
})

test('events logged while the receiver is down survive close(); the next client on the database sends them on start', async () => {
  receiver.set({ down: true })
  const name = uniqueStorageName('events-reload')
  const first = make(name)
  await first.start()
  first.logEvent('a')
  first.logEvent('b', { value: 2, metadata: { plan: 'pro' } })
  await first.flush()
  expect(first.getEventStats()).toMatchObject({ queued: 2, sent: 0, dropped: 0 })
  await first.close()
  expect(receiver.requests.length).toBeGreaterThanOrEqual(2) // tried on flush and again on close

  receiver.set({})
  const second = make(name)
  await second.start()
  // Picked up by start(): no logEvent, no flush() on this page.
  await until(() => second.getEventStats().sent === 2, 'the earlier page’s events')
  expect(receiver.events().map((e) => e.name)).toEqual(['a', 'b'])
  expect(receiver.events()[1]).toMatchObject({ value: 2, metadata: { plan: 'pro' } })
  expect(second.getEventStats()).toMatchObject({ queued: 0, sent: 2 })
  expect(await storedEvents(name)).toHaveLength(0)
})

test('a page that crashes (never closed, never flushed) loses nothing the next page cannot send', async () => {
  const name = uniqueStorageName('events-crash')
  const crashed = createClient({ url: receiver.flagsUrl, context: { targetingKey: 'bob' }, storageName: name, logger: createTestLogger(), events: { url: receiver.url } })
  for (let i = 0; i < 30; i++) crashed.logEvent('e', { value: i })
  await new Promise((resolve) => setTimeout(resolve, 100))

  const next = make(name)
  expect(next.getEventStats().queued).toBe(0)
  await next.start()
  await until(() => receiver.events().length === 30, 'thirty events')
  expect(receiver.events().map((e) => e.value)).toEqual(Array.from({ length: 30 }, (_, i) => i))
  expect(receiver.events().every((e) => e.targetingKey === 'bob')).toBe(true)
})

test('queued counts events picked up from storage before they are sent', async () => {
  receiver.set({ down: true })
  const name = uniqueStorageName('events-count')
  const first = make(name)
  for (let i = 0; i < 4; i++) first.logEvent('e')
  await first.close()

  const second = make(name, {}, { requestTimeoutMs: 200 })
  await second.start()
  await until(() => second.getEventStats().queued === 4, 'queued to count the earlier page’s 4 events')
})

test('close() sends what is queued before it resolves', async () => {
  const client = make(uniqueStorageName('events-close'))
  await client.start()
  client.logEvent('bye')
  await client.close()
  expect(receiver.events().map((e) => e.name)).toEqual(['bye'])
})

test('close() is bounded by requestTimeoutMs when the receiver hangs, and the events stay stored', async () => {
  receiver.set({ delayMs: 5000 })
  const name = uniqueStorageName('events-close-hang')
  const client = make(name, {}, { requestTimeoutMs: 300 })
  client.logEvent('late')
  expect((await timed(() => client.close())).ms).toBeLessThan(900)
  expect(await storedEvents(name)).toHaveLength(1)
})

test('an unreadable stored event is dropped and counted; the readable ones around it are sent', async () => {
  const name = uniqueStorageName('events-corrupt')
  const store = createStore(name, 'keyval')
  const good = (n: number) => ({ id: `good-${n}`, type: 'custom', name: `e${n}`, time: 1_700_000_000_000 + n, targetingKey: 'alice' })
  await setMany(
    [
      ['holdfast:event:000000000000001:000000000:a', good(1)],
      ['holdfast:event:000000000000002:000000000:b', 'garbage'],
      ['holdfast:event:000000000000003:000000000:c', { ...good(3), type: 'pageview' }],
      ['holdfast:event:000000000000004:000000000:d', { ...good(4), time: 'noon' }],
      ['holdfast:event:000000000000005:000000000:e', good(5)],
    ],
    store,
  )
  const client = make(name)
  await client.start()
  await until(() => client.getEventStats().sent === 2, 'the two readable events')
  expect(receiver.events().map((e) => e.id)).toEqual(['good-1', 'good-5'])
  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 2, dropped: 3 })
  expect(await storedEvents(name)).toHaveLength(0)
})

test('a page frozen within 100 ms of logging (a background tab Chrome freezes, then may discard) has its events in IndexedDB first', async () => {
  const name = uniqueStorageName('events-freeze')
  // Timers that never fire on their own: frozen, a page's timers do not run either.
  const clock = createManualClock()
  const environment = fakeEnvironment()
  const client = make(name, {}, { clock, environment })
  await client.start()
  // Delivery loaded and its first listing done: nothing else writes for it.
  await new Promise((resolve) => setTimeout(resolve, 50))
  client.logEvent('in-the-background')
  environment.fire('freeze')
  // Only what the `freeze` handler asked IndexedDB for before the page stopped; no timer ran.
  await new Promise((resolve) => setTimeout(resolve, 50))
  expect(await storedEvents(name)).toHaveLength(1)
})

// A hidden tab's timers are throttled: Chrome runs them at most once a second, and once a minute
// for a page hidden over 5 minutes whose timers are chained (an app's setInterval logging an
// event). The write delay's timer then kept an event in memory only, far past the promised 100 ms,
// and a renderer crash or kill in that window lost it. Hidden, the page writes at once.
test('a hidden page (its timers throttled) has a logged event in IndexedDB within 100 ms, with no timer firing', async () => {
  const name = uniqueStorageName('events-hidden')
  // Timers that never fire on their own, as a throttled background tab's may not for a minute.
  const clock = createManualClock()
  const environment = fakeEnvironment()
  const client = make(name, {}, { clock, environment })
  await client.start()
  await new Promise((resolve) => setTimeout(resolve, 50))
  environment.fire('hidden')
  await new Promise((resolve) => setTimeout(resolve, 50))
  client.logEvent('in-a-background-tab')
  await new Promise((resolve) => setTimeout(resolve, 100))
  expect(await storedEvents(name)).toHaveLength(1)
})

test('a tab that dies with events queued (killed, crashed): the tab still open sends them on its next interval, without logging anything itself', async () => {
  const name = uniqueStorageName('events-dead-tab')
  const clock = createManualClock()
  const open = make(name, { flushIntervalMs: 10_000 }, { clock, environment: fakeEnvironment() })
  await open.start()
  // Its start found nothing queued: its delivery is running (the flush interval is on its clock)
  // before the other tab logs anything. Awaited, not slept: under load the chunk takes its time.
  await until(() => clock.pending().includes(10_000), 'the open tab’s delivery started')
  await open.flush()
  const dead = createClient({ url: receiver.flagsUrl, context: { targetingKey: 'bob' }, storageName: name, logger: createTestLogger(), events: { url: receiver.url } })
  for (let i = 0; i < 3; i++) dead.logEvent('left-by-a-dead-tab', { value: i })
  await until(async () => (await storedEvents(name)).length === 3, 'the dead tab’s events in IndexedDB')
  // Nothing sent them yet: not the open tab's start, not the dead tab (never started, never flushed).
  expect(receiver.requests).toHaveLength(0)
  // Before: the interval skipped a tab with nothing of its own queued, so those waited for the next
  // page load (days, for a user who closed the tab) or an event this tab happened to log.
  clock.advance(10_000)
  // Awaited on the open tab's own word, not on the receiver's: the receiver holds the events before
  // the tab has read the 2xx, counted them sent and deleted them (under load, a while before).
  await until(() => open.getEventStats().sent === 3 && open.getEventStats().queued === 0, 'the dead tab’s events, sent by the open one')
  expect(receiver.events().map((e) => e.value)).toEqual([0, 1, 2])
  await until(async () => (await storedEvents(name)).length === 0, 'the sent events gone from IndexedDB')
})
