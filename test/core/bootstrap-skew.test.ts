// CONTRACT §5: between bootstrap and cache, the newer wins. A bootstrap is dated by the server that
// rendered it, a cache entry by this device: on a device whose clock runs minutes behind the
// server's, the page's own fresh bootstrap reads as "from the future". It is the newest thing the
// page has, not the oldest: yesterday's cache entry must not replace it after start() (for a whole
// outage, when the flag server is down).
import { afterEach, expect, test } from 'vitest'
import { createClient, type Clock, type FlagClient } from '@holdfast/core'
import { createFaultServer, flags, type FaultServer } from '../support/faultServer'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'

let server: FaultServer | undefined
const clients: FlagClient[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await server?.close()
})

const DAY = 24 * 60 * 60 * 1000
const MINUTE = 60 * 1000

test("a bootstrap from a server whose clock is 5 minutes ahead still wins over yesterday's cache entry", async () => {
  const storageName = uniqueStorageName('boot-skew')
  server = await createFaultServer(flags([{ key: 'banner', value: 'yesterday' }, { key: 'kill', value: false }]))
  // Yesterday: this device cached the values of the time.
  const manual = createManualClock()
  const yesterday: Clock = { ...manual, now: () => Date.now() - DAY }
  const seed = createClient({ url: server.url, context: { targetingKey: 'alice' }, storageName, logger: createTestLogger(), clock: yesterday })
  await seed.start()
  await seed.close()

  // Today, in an outage: the page was rendered with fresh values by a server 5 minutes ahead.
  server.always({ status: 503, raw: '' })
  const fetchedAt = Date.now() + 5 * MINUTE
  const client = createClient({
    url: server.url,
    context: { targetingKey: 'alice' },
    bootstrap: { context: { targetingKey: 'alice' }, flags: [{ key: 'banner', value: 'today' }, { key: 'kill', value: true }], fetchedAt },
    storageName,
    logger: createTestLogger(),
    clock: createManualClock(),
  })
  clients.push(client)
  expect(client.getValue('banner', '')).toBe('today')
  expect(await client.start()).toMatchObject({ state: 'stale', error: { code: 'HTTP' } })
  // Before: the cache entry, a day old, won as "newer" than a bootstrap dated ahead of this clock.
  expect(client.getDetails('banner', '')).toMatchObject({ value: 'today', source: 'bootstrap' })
  expect(client.getGate('kill')).toBe(true)
  // Its `updatedAt` is the one the server rendered with it: a hydrating render shows the same.
  expect(client.getDetails('kill', false).updatedAt).toBe(fetchedAt)
})

// The same page once the flag server answers, confirming the very values the bootstrap had. The
// bootstrap's time is the server's clock, 5 minutes ahead of this device: kept for hydration, but
// once the network confirms the content it was received by this device's now at the latest (as a
// 304 says, updated-at.test.ts), never "in 5 minutes". From then on an identical re-confirmation
// does not move it (CONTRACT §3). (Before: the 200 kept the future time, the 304 did not.)
test('an answer confirming a bootstrap dated ahead of this device dates it no later than now, then keeps that', async () => {
  server = await createFaultServer(flags([{ key: 'banner', value: 'today' }, { key: 'kill', value: true }]))
  const fetchedAt = Date.now() + 5 * MINUTE
  const clock = createManualClock()
  const client = createClient({
    url: server.url,
    context: { targetingKey: 'alice' },
    bootstrap: { context: { targetingKey: 'alice' }, flags: [{ key: 'banner', value: 'today' }, { key: 'kill', value: true }], fetchedAt },
    storage: 'memory',
    logger: createTestLogger(),
    clock,
  })
  clients.push(client)
  expect(client.getDetails('kill', false).updatedAt).toBe(fetchedAt)
  expect(await client.start()).toMatchObject({ state: 'ready', source: 'network' })
  const confirmed = client.getDetails('kill', false)
  expect(confirmed).toMatchObject({ value: true, source: 'network' })
  expect(confirmed.updatedAt).toBeLessThanOrEqual(clock.now())
  // A value that did change is dated by this device's clock; the unchanged one keeps its time.
  clock.advance(MINUTE)
  server.always(flags([{ key: 'banner', value: 'tomorrow' }, { key: 'kill', value: true }]))
  await client.refresh()
  expect(client.getDetails('banner', '').updatedAt).toBeGreaterThan(confirmed.updatedAt!)
  expect(client.getDetails('banner', '').updatedAt).toBeLessThanOrEqual(clock.now())
  expect(client.getDetails('kill', false).updatedAt).toBe(confirmed.updatedAt)
})

// A device whose clock runs 3 hours behind the relay's: the page's bootstrap is dated by the relay
// (believed up to a day ahead), and its first request, with the bootstrap's ETag, gets a 304. Then
// a relay of the fleet restarted on an old data dir during an upstream outage answers with the
// values it fetched an hour before that bootstrap (`stale`, its old `fetchedAt`): older than what
// the page holds, so they must not replace it (docs/relay.md: a stale answer older than what is held).
test('a bootstrap dated ahead of this device and confirmed by a 304 is still newer than a stale relay answer fetched before it', async () => {
  const relayNow = Date.now() + 3 * 60 * MINUTE
  const entries = [{ key: 'kill', value: true, variant: 'on' }]
  server = await createFaultServer((request) => (request.headers['if-none-match'] === '"today"' ? { status: 304, headers: { ETag: '"today"' } } : flags(entries, '"today"')))
  const client = createClient({
    url: server.url,
    context: { targetingKey: 'alice' },
    bootstrap: { context: { targetingKey: 'alice' }, flags: entries, etag: '"today"', fetchedAt: relayNow },
    storage: 'memory',
    logger: createTestLogger(),
    clock: createManualClock(),
    liveUpdates: false,
  })
  clients.push(client)
  expect(await client.start()).toMatchObject({ state: 'ready', source: 'network' })
  expect(server.requests.at(-1)!.headers['if-none-match']).toBe('"today"')
  server.always({ status: 200, body: { flags: [{ key: 'kill', value: false, variant: 'off' }], metadata: { holdfast: { source: 'data-dir', fetchedAt: relayNow - 60 * MINUTE, stale: true } } } })
  expect(await client.refresh()).toMatchObject({ state: 'stale', error: { code: 'UPSTREAM_STALE' } })
  // Before: the 304 had re-dated the flag by this device's clock (3 hours behind), and the answer
  // from an hour before the bootstrap replaced it: the kill switch off again.
  expect(client.getDetails('kill', false)).toMatchObject({ value: true, stale: true })
})
