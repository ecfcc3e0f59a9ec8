// Several tabs of one origin and a failing receiver: the origin as a whole must back off. A pass
// that found another tab's flush holding the cross-tab lock reset its own tab's backoff, so with a
// slow failing receiver the tabs kept each other at the base delay: one request after another,
// for as long as the receiver failed, whatever the number of failures.
import { afterEach, expect, test } from 'vitest'
import { createStore, set } from 'idb-keyval'
import { createClient, type FlagClient } from '@holdfast/core'
import { startEventsReceiver, until, type EventsReceiver } from '../support/eventsReceiver'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'
import { fakeEnvironment } from '../support/environment'

let receiver: EventsReceiver | undefined
const clients: FlagClient[] = []
const originalNavigator = Object.getOwnPropertyDescriptor(globalThis, 'navigator')
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await receiver?.close()
  if (originalNavigator) Object.defineProperty(globalThis, 'navigator', originalNavigator)
  else Reflect.deleteProperty(globalThis, 'navigator')
})

async function tabs(n: number, backoff: { baseMs: number; maxMs: number }) {
  // No Web Locks: the realm's mutex is the lock, as for several clients in one page.
  Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true })
  const name = uniqueStorageName('tabs-backoff')
  for (let i = 0; i < n; i++) {
    const client = createClient({
      url: receiver!.flagsUrl,
      context: { targetingKey: `user-${i}` },
      storageName: name,
      logger: createTestLogger(),
      events: { url: receiver!.url, flushIntervalMs: 100, backoff },
    })
    clients.push(client)
    client.logEvent(`from-${i}`)
  }
  await Promise.all(clients.map((c) => c.start()))
}
const eventsRequests = () => receiver!.requests.filter((r) => r.path.startsWith('/events')).length

test('three clients of one storage name and a slow 503: requests thin out as failures repeat', async () => {
  // Each request takes 150 ms and fails: the lock is busy much of the time.
  receiver = await startEventsReceiver({ down: true, delayMs: 150 })
  await tabs(3, { baseMs: 100, maxMs: 60_000 })
  // 4 s of failures. The origin backing off as one tab would: 100, 200, 400, 800, 1600 ms
  // (±50 %, plus 150 ms a request), about 6 requests. Tabs resetting each other's backoff sent
  // back to back: 18 on main; three tabs each on its own backoff, about 15.
  await new Promise((resolve) => setTimeout(resolve, 4000))
  expect(eventsRequests()).toBeGreaterThan(2)
  expect(eventsRequests()).toBeLessThanOrEqual(10)
}, 15_000)

test("a Retry-After one tab was given holds the origin's other tabs too", async () => {
  receiver = await startEventsReceiver({ status: 503, retryAfter: '3' })
  await tabs(4, { baseMs: 100, maxMs: 60_000 })
  // Each tab asked once and was told to wait 3 s (4 requests on main); one is enough.
  await new Promise((resolve) => setTimeout(resolve, 2000))
  expect(eventsRequests()).toBeGreaterThan(0)
  expect(eventsRequests()).toBeLessThanOrEqual(2)
}, 15_000)

test("flush() in another tab waits for a server's Retry-After too, but not for a backoff", async () => {
  receiver = await startEventsReceiver({ status: 503, retryAfter: '30' })
  await tabs(2, { baseMs: 100, maxMs: 60_000 })
  await until(() => eventsRequests() > 0, 'the first request')
  await new Promise((resolve) => setTimeout(resolve, 200))
  expect(eventsRequests()).toBe(1)
  // The tab that was told to wait keeps its flush() back (docs/events.md: flush() skips the backoff, not a
  // Retry-After); so does the other tab now. Before, its flush asked the receiver again at once.
  await Promise.all(clients.map((c) => c.flush()))
  expect(eventsRequests()).toBe(1)
  expect(clients.map((c) => c.getEventStats().queued)).toEqual([2, 2])

  // A plain 503 (no Retry-After): the origin's backoff does not hold an app's flush().
  receiver.set({ status: 503 })
  for (const c of clients) await c.close()
  clients.length = 0
  const before = eventsRequests()
  await tabs(2, { baseMs: 5000, maxMs: 60_000 })
  await until(() => eventsRequests() > before, 'the first request after a plain 503')
  await new Promise((resolve) => setTimeout(resolve, 200))
  const counted = eventsRequests()
  await clients[1].flush()
  await clients[0].flush()
  expect(eventsRequests()).toBe(counted + 2)
}, 15_000)

test('a page sending to another events URL (the wrong one was fixed) is not held by the wrong one\'s wait', async () => {
  receiver = await startEventsReceiver({})
  Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true })
  const name = uniqueStorageName('tabs-backoff-url')
  const make = (url: string) => {
    const client = createClient({
      url: receiver!.flagsUrl,
      context: { targetingKey: 'ada' },
      storageName: name,
      logger: createTestLogger(),
      events: { url, flushIntervalMs: 600_000, backoff: { baseMs: 30_000, maxMs: 60_000 } },
    })
    clients.push(client)
    return client
  }
  // The first page's URL is wrong (404): its failure stores a 15-30 s wait.
  const wrong = make(receiver.url.replace('/events', '/evnets'))
  await wrong.start()
  wrong.logEvent('kept')
  await wrong.flush()
  expect(wrong.getEventStats()).toMatchObject({ queued: 1, sent: 0 })
  await wrong.close()
  // The next page, with the right URL, sends what was kept at start.
  const right = make(receiver.url)
  await right.start()
  await until(() => right.getEventStats().sent === 1, 'the kept event to be sent at start', 3000)
})

test('a stored wait no tab could have written (longer than a day: another script, a corrupt entry) holds nothing', async () => {
  receiver = await startEventsReceiver({})
  Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true })
  const name = uniqueStorageName('tabs-backoff-junk')
  await set(`holdfast:events-wait:${receiver.url}`, [Date.now() + 1e15, 1e15, 'someone', Number.NaN], createStore(name, 'keyval'))
  const client = createClient({ url: receiver.flagsUrl, context: { targetingKey: 'ada' }, storageName: name, logger: createTestLogger(), events: { url: receiver.url, flushIntervalMs: 100 } })
  clients.push(client)
  await client.start()
  client.logEvent('sent anyway')
  await until(() => client.getEventStats().sent === 1, 'the event to be sent on the interval', 3000)
})

// A page being hidden does not read the origin's stored wait (a storage read then gets a page
// entering the back/forward cache evicted), so a tab another tab's Retry-After holds may send one
// keepalive request when hidden. That request's own answer must then hold the tab: however often the
// user hides it again during the wait, one request per tab, never one per hide.
test("a tab hidden again and again during another tab's Retry-After asks the receiver at most once", async () => {
  receiver = await startEventsReceiver({ status: 503, retryAfter: '60' })
  Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true })
  const name = uniqueStorageName('tabs-backoff-hidden')
  const clock = createManualClock()
  const make = (environment?: ReturnType<typeof fakeEnvironment>) => {
    const client = createClient({
      url: receiver!.flagsUrl,
      context: { targetingKey: 'ada' },
      storageName: name,
      logger: createTestLogger(),
      clock,
      environment,
      events: { url: receiver!.url, flushIntervalMs: 600_000 },
    })
    clients.push(client)
    return client
  }
  const told = make()
  await told.start()
  told.logEvent('a')
  await told.flush()
  expect(eventsRequests()).toBe(1)
  const env = fakeEnvironment()
  const hidden = make(env)
  await hidden.start()
  hidden.logEvent('b')
  for (let i = 0; i < 5; i++) {
    // Past the moment automatic passes rest after finding the origin held (up to 1 s).
    clock.advance(2000)
    env.fire('hidden')
    // The pass's requests answer at once: 150 ms is the hide's pass ended, whatever it did.
    await new Promise((r) => setTimeout(r, 150))
    env.fire('focus')
  }
  // The hidden tab did ask (its own answer is its last error), once: told's request and its own.
  expect(hidden.getEventStats().lastError?.httpStatus).toBe(503)
  expect(eventsRequests()).toBeLessThanOrEqual(2)
  expect(hidden.getEventStats()).toMatchObject({ dropped: 0 })
})

/**
 * `n` clients of one storage name (tabs of one origin without Web Locks) on one manual clock, each
 * counting its own events requests by the clock's time. Jitter fixed at 0.5: a step's delay is
 * three quarters of its ceiling (base 1 s: 750, 1,500, 3,000, 6,000 ms …).
 */
async function manualTabs(n: number, timeouts: number[] = []) {
  Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true })
  const name = uniqueStorageName('tabs-step')
  const clock = createManualClock()
  const sent: number[][] = []
  for (let i = 0; i < n; i++) {
    const mine: number[] = []
    sent.push(mine)
    const client = createClient({
      url: receiver!.flagsUrl,
      context: { targetingKey: `user-${i}` },
      storageName: name,
      logger: createTestLogger(),
      clock,
      random: () => 0.5,
      requestTimeoutMs: timeouts[i] ?? 5000,
      fetch: (input, init) => {
        if (String(input).startsWith(receiver!.url)) mine.push(clock.now())
        return globalThis.fetch(input, init)
      },
      events: { url: receiver!.url, flushIntervalMs: 100, backoff: { baseMs: 1000, maxMs: 60_000 } },
    })
    clients.push(client)
    await client.start()
  }
  /** Moves the clock `ms` in steps of `step`, letting each step's passes run (real storage, real HTTP). */
  const run = async (ms: number, step = 250) => {
    for (let t = 0; t < ms; t += step) {
      clock.advance(step)
      await new Promise((resolve) => setTimeout(resolve, 60))
    }
  }
  return { clock, sent, run, name }
}

// A tab on a failing receiver whose flush() finds another tab sending (the lock busy) kept none of
// its backoff: its retry was used up by the pass that never sent, and its wait cleared, so it sent
// again at its next interval (here 1 s after, not 3 s). Tabs taking turns reset each other.
test("a flush() that finds another tab sending keeps this tab's backoff", async () => {
  receiver = await startEventsReceiver({ down: true })
  // Tab 0 waits for the lock 1 s at most; tab 1's requests may take long.
  const { clock, sent, run } = await manualTabs(2, [1000, 60_000])
  const [a, b] = clients
  a.logEvent('a')
  // Three failures in a row: tab 0's next try is 3 s away (step 2).
  for (let i = 0; i < 3; i++) await a.flush()
  expect(sent[0]).toHaveLength(3)
  const failedAt = clock.now()

  // Tab 1 sends (slowly) and holds the cross-tab lock; tab 0's flush() waits for it, then gives up.
  receiver.set({ down: true, delayMs: 400 })
  b.logEvent('b')
  const sending = b.flush()
  await until(() => sent[1].length === 1, "tab 1's request out")
  const flushing = a.flush()
  await until(() => clock.pending().includes(1000), "tab 0's flush waiting for the lock")
  clock.advance(1000)
  await flushing
  await sending
  expect(sent[0]).toHaveLength(3)
  receiver.set({ down: true })

  // Until tab 0's own backoff ends, it asks nothing, whatever its interval and the other tab do.
  await run(2500 - (clock.now() - failedAt))
  expect(sent[0]).toHaveLength(3)
  // Nothing is held for good: once the receiver is back, the origin's next try sends both events.
  receiver.set({})
  await run(15_000, 500)
  expect(receiver.events().map((e) => e.name).sort()).toEqual(['a', 'b'])
}, 30_000)

// Each tab kept its own backoff step while the origin shared only the wait: when a stored wait
// ended, the tab on the lowest step sent, and its short wait was the origin's next one. Three tabs
// asked about as often as three tabs each backing off alone would, not as one.
test('three tabs on a failing receiver back off as one: the step is shared, not only the wait', async () => {
  receiver = await startEventsReceiver({ down: true })
  const { sent, run } = await manualTabs(3)
  clients.forEach((c, i) => c.logEvent(`from-${i}`))
  // 30 s of failures. One tab alone: 750, 1,500, 3,000, 6,000, 12,000 ms between requests = 5
  // or 6 requests. Three tabs each on its own step: about 11.
  await run(30_000, 500)
  const all = sent.flat().sort((x, y) => x - y)
  expect(all.length).toBeGreaterThan(3)
  expect(all.length).toBeLessThanOrEqual(7)
  // The waits grow as one tab's do: each gap at least the one before (jitter fixed), the last ≥ 6 s.
  const gaps = all.slice(1).map((t, i) => t - all[i])
  expect(gaps.at(-1)).toBeGreaterThanOrEqual(5900)
}, 60_000)

// The stored wait carries the origin's step; another script, an older page or a corrupt entry can
// leave any value there. A tab must neither loop on it (a step of 1e12 taken one failure at a time)
// nor wait past the backoff's max, and its events must go once the receiver is back.
test('a stored step no tab could have written (1e12, NaN, a string, an object) costs at most the max backoff', async () => {
  receiver = await startEventsReceiver({ down: true })
  const { clock, sent, run, name } = await manualTabs(1)
  const [a] = clients
  for (const step of [1e12, Number.NaN, '7', { step: 3 }, -5]) {
    // Its wait long over: only the step is read.
    await set(`holdfast:events-wait:${receiver.url}`, [clock.now() - 1, 1, 'another script', Number.NaN, step], createStore(name, 'keyval'))
    a.logEvent(`step-${String(step)}`)
    const before = sent[0].length
    await a.flush()
    expect(sent[0].length).toBe(before + 1)
  }
  receiver.set({})
  // maxMs is 60 s: the next try comes within it, and every event is sent.
  await run(61_000, 1000)
  expect(receiver.events().map((e) => e.name)).toHaveLength(5)
}, 60_000)
