// A clock that jumps back mid-run (an NTP correction after the machine ran hours ahead, a user
// fixing the time): what the page did before the jump must not turn into "the future" that
// outranks, or blocks, what it does after.
import { afterEach, beforeEach, expect, test } from 'vitest'
import { createClient, createMemoryStorage, type FlagClient } from '@holdfast/core'
import { createFaultServer, flags, type FaultServer } from '../support/faultServer'
import { createManualClock, createTestLogger, throughTimeout, uniqueStorageName } from '../support/clock'
import { fakeEnvironment } from '../support/environment'
import { startEventsReceiver, until } from '../support/eventsReceiver'

const HOUR = 60 * 60 * 1000
let server: FaultServer
const clients: FlagClient[] = []
beforeEach(async () => {
  server = await createFaultServer(flags([{ key: 'a', value: true }]))
})
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await server.close()
})

/** A manual clock that can also be set back (or ahead) by `skew` ms; timers stay on the manual clock. */
function skewedClock() {
  const manual = createManualClock()
  const clock = { ...manual, skew: 0, now: () => manual.now() + clock.skew }
  return clock
}

function make(options: Partial<Parameters<typeof createClient>[0]> = {}) {
  const clock = createManualClock()
  const client = createClient({ url: server.url, context: { targetingKey: 'u' }, storageName: uniqueStorageName('clock-jumps'), logger: createTestLogger(), clock, random: () => 0.5, ...options })
  clients.push(client)
  return { client, clock }
}

test('after the clock jumps back, the users this page loads since are the most recent: the eleventh evicts one loaded before the jump', async () => {
  const storage = createMemoryStorage()
  const clock = skewedClock()
  clock.skew = 5 * HOUR
  const { client } = make({ storage, clock, context: { targetingKey: 'u0' } })
  await client.start()
  for (let i = 1; i <= 9; i++) await client.setContext({ targetingKey: `u${i}` })
  // The clock is set right: five hours back. The page goes on: u0 again, then an eleventh user.
  clock.skew = 0
  await client.setContext({ targetingKey: 'u0' })
  await client.setContext({ targetingKey: 'u10' })
  await client.close()

  server.always('hang')
  const reader = make({ storage, context: { targetingKey: 'u0' } })
  await throughTimeout(reader.clock, server, 5000, () => reader.client.start())
  // u0 was used after the jump, u1 only before it: u1 is the one to go.
  expect(reader.client.getStatus().source).toBe('cache')
  await throughTimeout(reader.clock, server, 5000, () => reader.client.setContext({ targetingKey: 'u10' }))
  expect(reader.client.getStatus().source).toBe('cache')
  await throughTimeout(reader.clock, server, 5000, () => reader.client.setContext({ targetingKey: 'u1' }))
  expect(reader.client.getStatus().source).toBe('none')
})

const settle = () => new Promise((r) => setTimeout(r, 25))

test('a focus after the clock jumped back an hour refetches (once the throttle has passed), not an hour later', async () => {
  const clock = skewedClock()
  const environment = fakeEnvironment()
  const { client } = make({ clock, environment, storage: 'memory' })
  await client.start()
  expect(server.requests).toHaveLength(1)
  clock.skew = -HOUR
  clock.advance(6000) // past the 5 s focus throttle
  environment.fire('focus')
  await settle()
  expect(server.requests).toHaveLength(2)
})

test('a Retry-After that ran out while offline: after the clock jumped back an hour, `online` and refresh() ask again', async () => {
  const clock = skewedClock()
  const environment = fakeEnvironment()
  const { client } = make({ clock, environment, storage: 'memory' })
  await client.start()
  server.always({ status: 503, raw: '', headers: { 'Retry-After': '30' } })
  await client.refresh()
  expect(client.getStatus().state).toBe('stale')
  environment.fire('offline')
  clock.skew = -HOUR
  clock.advance(30_000) // the retry falls due while offline: it waits for `online`
  await settle()
  expect(server.requests).toHaveLength(2)
  server.always(flags([{ key: 'a', value: true }]))
  environment.fire('online')
  await settle()
  expect(server.requests).toHaveLength(3)
  expect(client.getStatus().state).toBe('ready')
})

test('after the clock jumped back an hour, refresh() is held by a Retry-After only as long as the server asked', async () => {
  const clock = skewedClock()
  const environment = fakeEnvironment()
  environment.isOnline = false // no automatic retry: only the app's refresh()
  const { client } = make({ clock, environment, storage: 'memory' })
  server.always({ status: 503, raw: '', headers: { 'Retry-After': '30' } })
  await client.start()
  clock.skew = -HOUR
  clock.advance(31_000)
  server.always(flags([{ key: 'a', value: true }]))
  await client.refresh()
  expect(server.requests).toHaveLength(2)
  expect(client.getStatus().state).toBe('ready')
})

test('a user switch during a Retry-After, after the clock jumped back an hour: the new user is asked for when the wait ends, not an hour later', async () => {
  const clock = skewedClock()
  const { client } = make({ clock, environment: fakeEnvironment(), storage: 'memory', liveUpdates: false })
  server.always({ status: 503, raw: '', headers: { 'Retry-After': '30' } })
  await client.start()
  server.always(flags([{ key: 'a', value: true }]))
  clock.skew = -HOUR
  // The switch keeps the server's wait (it is the server's, not the user's), measured by its length.
  expect((await client.setContext({ targetingKey: 'v' })).state).toBe('error')
  clock.advance(29_000)
  await new Promise((r) => setTimeout(r, 50))
  expect(server.requests).toHaveLength(1)
  clock.advance(2_000)
  await server.waitForRequests(2)
  expect(server.requests[1].body.context).toEqual({ targetingKey: 'v' })
})

test('events: another tab was sending when the clock jumped back an hour; this page’s full batches go out as soon as it is done, not an hour later', async () => {
  // Two clients of one storage name in one page stand in for two tabs (the realm's mutex is the lock).
  const receiver = await startEventsReceiver({ delayMs: 1000 })
  try {
    const storageName = uniqueStorageName('clock-jumps-busy')
    const common = { url: receiver.flagsUrl, storageName, logger: createTestLogger(), random: () => 0.5 }
    const other = createClient({ ...common, context: { targetingKey: 'other' }, events: { url: receiver.url } })
    const clock = skewedClock()
    const page = createClient({ ...common, context: { targetingKey: 'page' }, clock, environment: fakeEnvironment(), events: { url: receiver.url, batchSize: 5, exposures: false } })
    clients.push(other, page)
    await Promise.all([other.start(), page.start()])
    await new Promise((r) => setTimeout(r, 100))
    other.logEvent('other')
    const otherFlush = other.flush()
    // Its request is out (answered in 1 s): it holds the lock.
    await until(() => receiver.requests.length === 1, 'the other tab’s request')
    // A full batch while the other tab sends: it finds the lock busy and rests a moment.
    for (let i = 0; i < 5; i++) page.logEvent('before-jump')
    await new Promise((r) => setTimeout(r, 300))
    expect(page.getEventStats().sent).toBe(0)
    clock.skew = -HOUR
    await otherFlush
    for (let i = 0; i < 5; i++) page.logEvent('after-jump')
    // Before: the moment of rest ended an hour ahead of the clock, so every automatic send (full
    // batches, the interval, the page being hidden) was skipped until the clock caught up.
    await until(() => receiver.events().filter((e) => e.targetingKey === 'page').length === 10, 'the page’s 10 events to arrive', 3000)
  } finally {
    await receiver.close()
  }
})

// An entry saved while the device's clock ran two days ahead carries that time (heldAt). Read back,
// such a time is untrusted (the oldest possible), so a relay's stale answer newer than the entry
// is shown, as it should be; but the write of that answer compared the raw future time and was
// skipped. A reload in the outage that followed went back to the entry's older values.
//
//   device clock  +2 days ─── set right ──────────────────────────────
//   page 1        v1 saved (heldAt: +2 days)
//   page 2                      relay stale v1.5 (fetched after v1): shown, not saved (before)
//   page 3 (relay down)                                              v1 (before), v1.5 (now)
test("a relay's stale answer newer than an entry saved while the clock ran ahead is saved: the reload after shows it", async () => {
  const storage = createMemoryStorage()
  const ahead = skewedClock()
  ahead.skew = 48 * HOUR
  server.always(flags([{ key: 'banner', value: 'v1' }]))
  const first = make({ storage, clock: ahead, liveUpdates: false })
  await first.client.start()
  await first.client.close()

  // The clock is set right. The relay's upstream fails: it serves what it fetched after v1, stale.
  server.always({ body: { flags: [{ key: 'banner', value: 'v1.5' }], metadata: { holdfast: { source: 'data-dir', fetchedAt: Date.now(), stale: true } } } })
  const second = make({ storage, liveUpdates: false })
  await second.client.start()
  expect(second.client.getValue('banner', '')).toBe('v1.5')
  await second.client.close()

  server.always({ status: 503 })
  const third = make({ storage, liveUpdates: false })
  expect((await third.client.start()).state).toBe('stale')
  // Before: 'v1', the entry the skipped write left.
  expect(third.client.getValue('banner', '')).toBe('v1.5')
})
