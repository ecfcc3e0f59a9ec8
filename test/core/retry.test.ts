// When the client asks again: backoff after transient failures, Retry-After in all three forms,
// no automatic retry of a rejected context, no loop on bad credentials, polling.
import { afterEach, beforeEach, expect, test } from 'vitest'
import { createClient, type FlagClient } from '@holdfast/core'
import { createFaultServer, flags, type FaultServer } from '../support/faultServer'
import { throughTimeout, createManualClock, createTestLogger, uniqueStorageName, type ManualClock } from '../support/clock'

let server: FaultServer
let client: FlagClient
let clock: ManualClock
const good = flags([{ key: 'a', value: true }])
beforeEach(async () => {
  server = await createFaultServer(good)
  clock = createManualClock()
})
afterEach(async () => {
  await client?.close()
  await server.close()
})

function make(options: Partial<Parameters<typeof createClient>[0]> = {}) {
  client = createClient({ url: server.url, context: { targetingKey: 'u' }, storageName: uniqueStorageName('retry'), logger: createTestLogger(), clock, random: () => 0.5, requestTimeoutMs: 300, ...options })
  return client
}

/** The asctime form of an HTTP-date (RFC 9110 §5.6.7), always UTC: `Sun Nov  6 08:49:37 1994`. */
function asctime(at: number): string {
  const [day, date, month, year, time] = new Date(at).toUTCString().replace(',', '').split(' ')
  return `${day} ${month} ${date.replace(/^0/, ' ')} ${time} ${year}`
}

/** Fires the pending retry and waits for the request it makes to settle. */
async function fireRetry() {
  const delay = clock.fireNext()
  await client.refresh().catch(() => {}) // joins the in-flight request
  return delay
}

test('transient failures retry with capped exponential backoff and jitter until they succeed', async () => {
  server.always({ status: 503, raw: '' })
  make()
  await client.start()
  const delays: (number | undefined)[] = []
  for (let i = 0; i < 9; i++) {
    delays.push(clock.pending()[0])
    await fireRetry()
  }
  expect(delays).toEqual([750, 1500, 3000, 6000, 12000, 24000, 45000, 45000, 45000])
  expect(server.requests).toHaveLength(10)
  server.always(good)
  await fireRetry()
  expect(client.getStatus().state).toBe('ready')
  expect(clock.pending()).toEqual([])
})

test.each([
  ['delta-seconds', () => '7', 7000],
  ['HTTP-date', () => new Date(Math.ceil(Date.now() / 1000) * 1000 + 9000).toUTCString(), 9000],
  ['ISO 8601', () => new Date(Date.now() + 11_000).toISOString(), 11_000],
  // `Sun Nov  6 08:49:37 1994`: before, not read at all (the retry came after the 750 ms backoff).
  ['asctime', () => asctime(Math.ceil(Date.now() / 1000) * 1000 + 13_000), 13_000],
  ['HTTP-date with a numeric zone', () => new Date(Math.ceil(Date.now() / 1000) * 1000 + 9000).toUTCString().replace('GMT', '+0000'), 9000],
])('Retry-After as %s is honoured, and refresh() does not jump it', async (_name, header, expected) => {
  make()
  await client.start()
  server.always({ status: 429, raw: '', headers: { 'Retry-After': header() } })
  await client.refresh()
  const [delay] = clock.pending()
  expect(Math.abs(delay - expected)).toBeLessThanOrEqual(1000)
  const before = server.requests.length
  const status = await client.refresh()
  expect(server.requests.length).toBe(before)
  expect(status.state).toBe('stale')
  server.always(good)
  await fireRetry()
  expect(server.requests.length).toBe(before + 1)
  expect(client.getStatus().state).toBe('ready')
})

test.each([404, 409, 413, 418])('HTTP %i to a flag request is one of "other 4xx": transient, retried with backoff (§2.1)', async (status) => {
  server.next({ status, raw: '' })
  make()
  expect((await client.start()).state).toBe('error')
  expect(clock.pending()).toEqual([750])
  await fireRetry()
  expect(server.requests).toHaveLength(2)
  expect(client.getStatus().state).toBe('ready')
})

// A captive portal (hotel, train Wi-Fi) answers every request with a redirect to its login page
// until the user signs in. CONTRACT §2.1: any status but 200/304/400/401/403 is transient. Before, a
// 3xx halted the client until the next trigger: a page without polling stayed `stale` until a focus
// or a reload, long after the portal let requests through.
test.each([302, 307, 301])('HTTP %i (a captive portal redirecting to its login page) is transient: retried with backoff until the flags come', async (status) => {
  make()
  await client.start()
  server.always({ status, raw: '', headers: { Location: 'http://127.0.0.1:9/login' } })
  expect((await client.refresh())).toMatchObject({ state: 'stale', error: { code: 'HTTP', httpStatus: status } })
  expect(clock.pending()).toEqual([750])
  await fireRetry()
  expect(clock.pending()).toEqual([1500])
  server.always(good)
  await fireRetry()
  expect(client.getStatus().state).toBe('ready')
  expect(clock.pending()).toEqual([])
})

test('refresh() waits out a Retry-After but not the longer backoff it came with (§3)', async () => {
  server.always({ status: 503, raw: '' })
  make()
  await client.start()
  for (let i = 0; i < 3; i++) await fireRetry()
  // The next backoff (12 s) is longer than what the server asks for now (1 s).
  server.always({ status: 429, raw: '', headers: { 'Retry-After': '1' } })
  await fireRetry()
  expect(clock.pending()).toEqual([12000])
  const before = server.requests.length
  await client.refresh()
  expect(server.requests.length).toBe(before) // the Retry-After is pending: nothing goes
  clock.advance(1500)
  server.always(good)
  expect((await client.refresh()).state).toBe('ready')
  expect(server.requests.length).toBe(before + 1)
})

test('after a 400 the context is not retried automatically; refresh and setContext still try', async () => {
  make({ refreshIntervalMs: 1000 })
  await client.start()
  server.always({ status: 400, body: { errorCode: 'INVALID_CONTEXT', errorDetails: 'bad email' } })
  const status = await client.refresh()
  expect(status).toMatchObject({ state: 'error', error: { code: 'INVALID_CONTEXT', httpStatus: 400 } })
  expect(status.error!.message).toContain('bad email')
  const count = server.requests.length
  for (let i = 0; i < 5; i++) clock.advance(1000)
  await new Promise((r) => setTimeout(r, 30))
  expect(server.requests.length).toBe(count)
  await client.refresh()
  expect(server.requests.length).toBe(count + 1)
  server.always(good)
  expect((await client.setContext({ targetingKey: 'other' })).state).toBe('ready')
})

test('an error body whose errorCode or errorDetails is empty reads as the parts it has, with no empty ones', async () => {
  // Before: an empty errorCode beside the details read "context rejected (HTTP 400): : bad email".
  make()
  await client.start()
  server.always({ status: 400, body: { errorCode: '', errorDetails: 'bad email' } })
  expect((await client.refresh()).error!.message).toBe('context rejected (HTTP 400): bad email')
  server.always({ status: 503, body: { errorCode: 'GENERAL', errorDetails: '' } })
  expect((await client.refresh()).error!.message).toBe('HTTP 503: GENERAL')
  server.always({ status: 503, body: { errorCode: '', errorDetails: '' } })
  expect((await client.refresh()).error!.message).toBe('HTTP 503')
  // A megabyte of details (a stack trace, a dump) is cut, as the events' error bodies are: the
  // message is held in the status and logged.
  server.always({ status: 503, body: { errorCode: 'GENERAL', errorDetails: 'x'.repeat(1_000_000) } })
  expect((await client.refresh()).error!.message).toBe(`HTTP 503: GENERAL: ${'x'.repeat(191)}`)
})

test('after a 401 the client waits for the next trigger instead of looping', async () => {
  make()
  await client.start()
  server.always({ status: 401, raw: '' })
  await client.refresh()
  expect(clock.pending()).toEqual([])
  expect(client.getGate('a')).toBe(true)
  expect(client.getStatus()).toMatchObject({ state: 'error', error: { code: 'UNAUTHORIZED' } })
})

test('clearCacheOnUnauthorized drops held and persisted values on 401', async () => {
  const name = uniqueStorageName('unauth')
  make({ storageName: name, clearCacheOnUnauthorized: true })
  await client.start()
  server.always({ status: 403, raw: '' })
  await client.refresh()
  expect(client.getDetails('a', false)).toMatchObject({ value: false, source: 'default' })
  await client.close()
  server.always('hang')
  make({ storageName: name })
  await throughTimeout(clock, server, 300, () => client.start())
  expect(client.getStatus().source).toBe('none')
})

test('clearCacheOnUnauthorized after a success for this user: the fallback does not come back (CONTRACT §5: no longer used once a success applied)', async () => {
  const fallback = { context: { targetingKey: 'anyone' }, flags: [{ key: 'a', value: false }, { key: 'only-in-fallback', value: true }], fetchedAt: 1 }
  make({ clearCacheOnUnauthorized: true, fallback })
  await client.start()
  expect(client.getDetails('a', false)).toMatchObject({ value: true, source: 'network' })
  server.always({ status: 401, raw: '' })
  await client.refresh()
  // The values of the revoked credentials are gone, and the build-time snapshot does not stand in
  // for a user whose own answer applied: the caller's defaults.
  expect(client.getDetails('a', true)).toMatchObject({ value: true, source: 'default' })
  expect(client.getDetails('only-in-fallback', false)).toMatchObject({ value: false, source: 'default' })
  expect(client.getStatus()).toMatchObject({ state: 'error', source: 'none', error: { code: 'UNAUTHORIZED' } })
  // A user never answered (a switch whose first attempt is refused) still gets the fallback.
  await client.setContext({ targetingKey: 'v' })
  expect(client.getDetails('only-in-fallback', false)).toMatchObject({ value: true, source: 'fallback' })
})

test('polling refetches every refreshIntervalMs and a failure switches to backoff', async () => {
  make({ refreshIntervalMs: 30_000 })
  await client.start()
  expect(clock.pending()).toEqual([30_000])
  clock.advance(30_000)
  await client.refresh()
  expect(server.requests).toHaveLength(2)
  server.always({ status: 500, raw: '' })
  clock.advance(30_000)
  await client.refresh()
  expect(clock.pending()).toEqual([750])
  server.always(good)
  await fireRetry()
  expect(clock.pending()).toEqual([30_000])
})

test('close stops every timer and later calls do nothing', async () => {
  server.always({ status: 500, raw: '' })
  make({ refreshIntervalMs: 1000 })
  await client.start()
  await client.close()
  await client.close()
  expect(clock.pending()).toEqual([])
  const count = server.requests.length
  await client.refresh()
  expect(server.requests.length).toBe(count)
})

// A server's wait is honoured in full up to an hour, whatever it says past that. Before, `Retry-After:
// 86400` (or 99999999, or a date years ahead) held every request for a day: a login (`setContext`)
// left the new user on defaults, and `refresh()` did nothing, for 24 hours. A wait that cannot be
// read is no wait at all.
const YEARS_AHEAD = () => new Date(Date.now() + 3 * 365 * 864e5).toUTCString()
test.each([
  ['86400', () => '86400'],
  ['99999999', () => '99999999'],
  ['an HTTP-date years ahead', YEARS_AHEAD],
  ['an ISO date years ahead', () => new Date(Date.now() + 3 * 365 * 864e5).toISOString()],
])('Retry-After: %s holds a user switch and refresh() for an hour at most, not a day', async (_name, header) => {
  make({ refreshOnFocus: false })
  await client.start()
  server.always({ status: 429, raw: '', headers: { 'Retry-After': header() } })
  await client.refresh()
  expect(Math.max(...clock.pending())).toBeLessThanOrEqual(3_600_000)
  const before = server.requests.length
  server.always((request) => flags([{ key: 'who', value: request.body.context.targetingKey }]))

  // bob logs in: held by the server's wait, shown what a failed attempt shows (nothing of u's).
  const held = await client.setContext({ targetingKey: 'bob' })
  expect(held).toMatchObject({ state: 'error', error: { httpStatus: 429 } })
  expect(client.getDetails('who', 'DEFAULT')).toMatchObject({ value: 'DEFAULT', source: 'default' })
  clock.advance(3_599_000)
  await client.refresh()
  expect(server.requests.length).toBe(before)

  // The hour is up: bob's request goes by itself (the scheduler's timer), once.
  clock.advance(1_100)
  await server.waitForRequests(before + 1)
  await client.refresh() // joins it
  expect(client.getDetails('who', '')).toMatchObject({ value: 'bob', source: 'network' })
  expect(client.getStatus().state).toBe('ready')
  expect(server.requests.length).toBe(before + 1)
  expect(server.requests.at(-1)!.body.context).toEqual({ targetingKey: 'bob' })
})

test('Retry-After: 600 (longer than the backoff ceiling) is honoured in full: refresh() asks nothing for ten minutes, then the retry goes', async () => {
  make({ refreshOnFocus: false })
  await client.start()
  server.always({ status: 503, raw: '', headers: { 'Retry-After': '600' } })
  await client.refresh()
  const before = server.requests.length
  server.always(flags([{ key: 'who', value: 'back' }]))
  clock.advance(599_000)
  await client.refresh()
  expect(server.requests.length).toBe(before)
  clock.advance(1_100)
  await server.waitForRequests(before + 1)
  await client.refresh()
  expect(client.getDetails('who', '')).toMatchObject({ value: 'back', source: 'network' })
})

test.each(['-5', 'NaN', 'soon', '1e9'])('Retry-After: %s cannot be read: no wait, refresh() asks at once (automatic retries back off as usual)', async (header) => {
  make()
  await client.start()
  server.always({ status: 503, raw: '', headers: { 'Retry-After': header } })
  await client.refresh()
  expect(clock.pending()).toEqual([750])
  const before = server.requests.length
  server.always(good)
  expect((await client.refresh()).state).toBe('ready')
  expect(server.requests.length).toBe(before + 1)
})
