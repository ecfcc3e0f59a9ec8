// CONTRACT §3: `updatedAt` is when this content (value, variant, reason, metadata) was first
// received; an identical re-confirmation does not move it. A server-rendered page brings the same
// content in its bootstrap on every load: that is a re-confirmation too, not news. Before, every
// page load (each SSR bootstrap dated now) moved `updatedAt` of every unchanged flag to the render
// time, though the cache knew the content since yesterday.
import { afterEach, expect, test } from 'vitest'
import { createClient, type ClientOptions, type Clock, type FlagClient, type FlagEntry } from '@holdfast/core'
import { createFaultServer, flags, type FaultServer } from '../support/faultServer'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'

let server: FaultServer | undefined
const clients: FlagClient[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await server?.close()
})

const DAY = 24 * 60 * 60 * 1000

test("a bootstrap with the same content as the cache keeps the cache's updatedAt, through the network's confirmation too", async () => {
  const storageName = uniqueStorageName('updated-at')
  server = await createFaultServer(flags([{ key: 'banner', value: 'sale', variant: 'a' }, { key: 'limit', value: 3 }]))
  const yesterday: Clock = { ...createManualClock(), now: () => Date.now() - DAY }
  const seed = createClient({ url: server.url, context: { targetingKey: 'alice' }, storageName, logger: createTestLogger(), clock: yesterday })
  await seed.start()
  const firstReceived = seed.getDetails('banner', '').updatedAt!
  expect(firstReceived).toBeLessThan(Date.now() - DAY / 2)
  await seed.close()

  // Today: the page is rendered with the same banner, and a limit that changed.
  server.always(flags([{ key: 'banner', value: 'sale', variant: 'a' }, { key: 'limit', value: 5 }]))
  const renderedAt = Date.now()
  const client = createClient({
    url: server.url,
    context: { targetingKey: 'alice' },
    bootstrap: { context: { targetingKey: 'alice' }, flags: [{ key: 'banner', value: 'sale', variant: 'a' }, { key: 'limit', value: 5 }], fetchedAt: renderedAt },
    storageName,
    logger: createTestLogger(),
    clock: createManualClock(),
  })
  clients.push(client)
  await client.start()
  expect(client.getDetails('banner', '')).toMatchObject({ value: 'sale', source: 'network', updatedAt: firstReceived })
  // New content is dated when it first came: the render.
  expect(client.getDetails('limit', 0)).toMatchObject({ value: 5, updatedAt: renderedAt })
})

/** A page alice's bootstrap was rendered for by a server whose clock runs 23 hours ahead (believed: under a day). */
function renderedAhead(entries: FlagEntry[], storage: Pick<ClientOptions, 'storage' | 'storageName'>, etag?: string) {
  const clock = createManualClock()
  const fetchedAt = clock.now() + 23 * 60 * 60 * 1000
  const bootstrap = { context: { targetingKey: 'alice' }, flags: entries, etag, fetchedAt }
  const client = createClient({ url: server!.url, context: { targetingKey: 'alice' }, bootstrap, ...storage, logger: createTestLogger(), clock })
  clients.push(client)
  return { client, clock, fetchedAt }
}

test('a bootstrap dated hours ahead (a server clock wrong) and confirmed by a 304 no longer keeps updatedAt in the future, nor writes it to the cache', async () => {
  const storageName = uniqueStorageName('updated-at-304-ahead')
  const entries = [{ key: 'kill', value: true }]
  // The server 304s to the snapshot the page was rendered from, as long as its flags do not change.
  server = await createFaultServer((request) => (request.headers['if-none-match'] === '"e1"' ? { status: 304, headers: { ETag: '"e1"' } } : flags(entries, '"e1"')))
  const { client, clock, fetchedAt } = renderedAhead(entries, { storageName }, '"e1"')
  // Hydration: the first render shows the date the server rendered.
  expect(client.getDetails('kill', false).updatedAt).toBe(fetchedAt)
  expect(await client.start()).toMatchObject({ state: 'ready', source: 'network' })
  expect(server.requests.at(-1)!.headers['if-none-match']).toBe('"e1"')
  // Confirmed by the network now: first received no later than now, as a 200 of the same content
  // says. Before: 23 hours from now, through every 304 until the flag changed.
  expect(client.getDetails('kill', false).updatedAt).toBeLessThanOrEqual(clock.now())
  await client.close()

  // The next visit, the flag server down: the cache says when the content came, not tomorrow.
  server.always({ status: 503, raw: '' })
  const next = createClient({ url: server.url, context: { targetingKey: 'alice' }, storageName, logger: createTestLogger(), clock: createManualClock() })
  clients.push(next)
  await next.start()
  expect(next.getDetails('kill', false)).toMatchObject({ value: true, source: 'cache' })
  expect(next.getDetails('kill', false).updatedAt).toBeLessThanOrEqual(Date.now())
})

// The same page when the server answers the confirmation with a full 200 (no ETag, or a CDN that
// drops `If-None-Match`) carrying no relay `fetchedAt`: it must say what the 304 says. Before, the
// 200 kept the bootstrap's time, 23 hours from now ("updated tomorrow"), while a 304 of the same
// snapshot gave "now"; and the cache entry then carried the future time, dropped on the next read.
test('a bootstrap dated hours ahead and confirmed by a 200 of the same content is dated no later than now, as by a 304', async () => {
  const entries = [{ key: 'kill', value: true }, { key: 'banner', value: 'sale' }]
  server = await createFaultServer(flags(entries))
  const { client, clock, fetchedAt } = renderedAhead(entries, { storage: 'memory' })
  expect(client.getDetails('kill', false).updatedAt).toBe(fetchedAt)
  expect(await client.start()).toMatchObject({ state: 'ready', source: 'network' })
  const confirmed = client.getDetails('kill', false)
  expect(confirmed).toMatchObject({ value: true, source: 'network', stale: false })
  expect(confirmed.updatedAt).toBeLessThanOrEqual(clock.now())
  // From then on an identical re-confirmation does not move it.
  clock.advance(60_000)
  await client.refresh()
  expect(client.getDetails('kill', false).updatedAt).toBe(confirmed.updatedAt)
  expect(client.getDetails('banner', '').updatedAt).toBeLessThanOrEqual(clock.now())
})

// A bootstrap without a usable `fetchedAt` (left out, as the reader allows; a string; negative):
// when its content came is unknown. Before, every flag said `updatedAt: 0` ("updated in 1970"), and
// kept saying it through every answer confirming the same content, the minimum of 0 and now.
test.each([['left out', undefined], ['a string', 'yesterday'], ['negative', -5]])(
  'a bootstrap whose fetchedAt is %s dates nothing at 1970: unknown until an answer, then when that answer came',
  async (_name, fetchedAt) => {
    const entries = [{ key: 'kill', value: true }]
    server = await createFaultServer(flags(entries))
    const clock = createManualClock()
    const bootstrap = { context: { targetingKey: 'alice' }, flags: entries, fetchedAt } as never
    const client = createClient({ url: server.url, context: { targetingKey: 'alice' }, bootstrap, storage: 'memory', logger: createTestLogger(), clock })
    clients.push(client)
    expect(client.getDetails('kill', false)).toMatchObject({ value: true, source: 'bootstrap' })
    expect(client.getDetails('kill', false).updatedAt).toBeUndefined()
    await client.start()
    const confirmed = client.getDetails('kill', false)
    expect(confirmed).toMatchObject({ value: true, source: 'network' })
    expect(confirmed.updatedAt).toBeGreaterThan(0)
    expect(confirmed.updatedAt).toBeLessThanOrEqual(clock.now())
  },
)

// A cached flag's updatedAt later than this device's now is unknown (client-trust); a bootstrap's
// was believed, any number. `updatedAt: 1e300` (a corrupt or hand-written bootstrap) made every
// stale relay answer "older" than that flag: a kill switch engaged upstream, served stale by a
// relay, never replaced the bootstrap's value. Now an entry dated after the bootstrap's own
// fetchedAt (past a minute of skew) is unknown too: the bootstrap's fetchedAt stands in.
test.each([1e300, 'an hour after the bootstrap'] as const)('a bootstrap entry with updatedAt %s is not trusted: a newer stale relay answer replaces it', async (label) => {
  const clock = createManualClock()
  const fetchedAt = clock.now() - 3_600_000
  const updatedAt = label === 1e300 ? 1e300 : fetchedAt + 3_600_000
  server = await createFaultServer({
    status: 200,
    body: { flags: [{ key: 'kill', value: true, variant: 'on' }], metadata: { holdfast: { stale: true, fetchedAt: clock.now() - 600_000 } } },
  })
  const client = createClient({
    url: server.url,
    context: { targetingKey: 'alice' },
    storage: 'memory',
    clock,
    logger: createTestLogger(),
    liveUpdates: false,
    bootstrap: { context: { targetingKey: 'alice' }, flags: [{ key: 'kill', value: false, variant: 'off', updatedAt }], fetchedAt },
  })
  clients.push(client)
  expect(client.getDetails('kill', true).updatedAt).toBe(fetchedAt)
  await client.start()
  // Before: false, the bootstrap's value kept over the relay's newer one for good.
  expect(client.getDetails('kill', false)).toMatchObject({ value: true, stale: true })
})
