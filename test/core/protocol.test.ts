// What the client sends: the OFREP request, configured headers, If-None-Match only for the same
// full context, and what a 304 means.
import { afterEach, beforeEach, expect, test, vi } from 'vitest'
import { createClient, type FlagClient } from '@holdfast/core'
import { createFaultServer, delayed, flags, type FaultServer } from '../support/faultServer'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'
import { bulkEndpoint } from '../../packages/core/src/protocol/fetchFlags'

let server: FaultServer
let client: FlagClient
beforeEach(async () => {
  server = await createFaultServer(flags([{ key: 'a', value: true }], '"v1"'))
})
afterEach(async () => {
  await client?.close()
  await server.close()
})

test('posts the context to the OFREP bulk endpoint with configured headers', async () => {
  let calls = 0
  client = createClient({
    url: `${server.url}/`,
    context: { targetingKey: 'u1', plan: 'pro', nested: { b: 2, a: 1 } },
    headers: () => ({ Authorization: `Bearer token-${++calls}`, 'X-API-Key': 'k' }),
    storageName: uniqueStorageName('proto'),
    logger: createTestLogger(),
  })
  await client.start()
  await client.refresh()
  const [first, second] = server.requests
  expect(first.method).toBe('POST')
  expect(first.path).toBe('/ofrep/v1/evaluate/flags')
  expect(first.headers['content-type']).toBe('application/json')
  expect(first.body).toEqual({ context: { targetingKey: 'u1', plan: 'pro', nested: { b: 2, a: 1 } } })
  expect(first.headers.authorization).toBe('Bearer token-1')
  expect(second.headers.authorization).toBe('Bearer token-2')
  expect(first.headers['x-api-key']).toBe('k')
})

test('a base URL with a query keeps it after the endpoint path, and one with whitespace around it (an env var with a newline) works', async () => {
  // Before: the path was appended after the query (`/?env=prod/ofrep/v1/...`: the server saw only
  // `/?env=prod...`, or the path went into a fragment), and a trailing newline made every request
  // fail as NETWORK "Failed to parse URL", for ever.
  for (const [url, expected] of [
    [`${server.url}/flags/?env=prod#top`, '/flags/ofrep/v1/evaluate/flags?env=prod'],
    [`  ${server.url}/flags\n`, '/flags/ofrep/v1/evaluate/flags'],
    [`${server.url}?`, '/ofrep/v1/evaluate/flags'],
  ]) {
    client = createClient({ url, context: { targetingKey: 'u1' }, storage: 'memory', storageName: uniqueStorageName('query'), logger: createTestLogger() })
    expect(await client.start()).toMatchObject({ state: 'ready', source: 'network' })
    expect(server.requests.at(-1)!.path).toBe(expected)
    await client.close()
  }
})

test("a notice's refetch query joins the base URL's own query", () => {
  expect(bulkEndpoint('https://f.example/?env=prod', 'flagConfigEtag=v2')).toBe('https://f.example/ofrep/v1/evaluate/flags?env=prod&flagConfigEtag=v2')
  expect(bulkEndpoint('https://f.example/x/', 'flagConfigEtag=v2')).toBe('https://f.example/x/ofrep/v1/evaluate/flags?flagConfigEtag=v2')
  expect(bulkEndpoint('https://f.example?', 'flagConfigEtag=v2')).toBe('https://f.example/ofrep/v1/evaluate/flags?flagConfigEtag=v2')
})

test('an ETag that cannot be sent back (newline, non-Latin-1, 20 KB) is not sent: the full answer replaces it', async () => {
  // Before: a bootstrap's ETag with a newline or a non-Latin-1 character made fetch throw on every
  // request (NETWORK, for ever, for this user), and a 20 KB one drew a 431 from the server each time.
  for (const etag of ['"a\nb"', '"é€"', `"${'x'.repeat(20_000)}"`]) {
    const bootstrap = { context: { targetingKey: 'u1' }, flags: [{ key: 'a', value: false }], fetchedAt: Date.now() - 1000, etag }
    client = createClient({ url: server.url, context: { targetingKey: 'u1' }, bootstrap, storage: 'memory', storageName: uniqueStorageName('bad-etag'), logger: createTestLogger() })
    expect(await client.start()).toMatchObject({ state: 'ready', source: 'network' })
    expect(client.getGate('a')).toBe(true)
    expect(server.requests.at(-1)!.headers['if-none-match']).toBeUndefined()
    // The server's own ETag is used from then on.
    await client.refresh()
    expect(server.requests.at(-1)!.headers['if-none-match']).toBe('"v1"')
    await client.close()
  }
})

test('a custom fetch answering something that is not quite a Response is an INVALID_RESPONSE, retried like one', async () => {
  // Before: reading `headers` of the answer threw, the status stayed `loading` and nothing was retried.
  const clock = createManualClock()
  let broken = true
  const fetchImpl: typeof fetch = async (input, init) => (broken ? ({ status: 200, ok: true, text: async () => '{"flags":[]}' } as unknown as Response) : fetch(input, init))
  client = createClient({ url: server.url, context: { targetingKey: 'u1' }, fetch: fetchImpl, clock, storage: 'memory', storageName: uniqueStorageName('not-response'), logger: createTestLogger() })
  expect(await client.start()).toMatchObject({ state: 'error', error: { code: 'INVALID_RESPONSE' } })
  broken = false
  const retry = Math.min(...clock.pending())
  expect(retry).toBeLessThan(60_000)
  clock.advance(retry)
  await vi.waitFor(() => expect(client.getStatus()).toMatchObject({ state: 'ready', source: 'network' }))
})

test('If-None-Match is sent for the same context, and 304 confirms every held flag', async () => {
  const clock = createManualClock()
  client = createClient({ url: server.url, context: { targetingKey: 'u1' }, storageName: uniqueStorageName('etag'), logger: createTestLogger(), clock })
  await client.start()
  expect(server.requests[0].headers['if-none-match']).toBeUndefined()
  const updatedAt = client.getDetails('a', false).updatedAt

  server.always({ status: 503, raw: '' })
  await client.refresh()
  expect(client.getDetails('a', false).stale).toBe(true)

  server.always({ status: 304, headers: { ETag: '"v1"' } })
  const status = await client.refresh()
  expect(server.requests.at(-1)!.headers['if-none-match']).toBe('"v1"')
  expect(status).toMatchObject({ state: 'ready', source: 'network' })
  expect(client.getDetails('a', false)).toMatchObject({ value: true, stale: false, source: 'network', updatedAt })
})

test('a 304 naming another ETag than the one sent confirms nothing (as the relay reads it); its weak form is the same tag', async () => {
  client = createClient({ url: server.url, context: { targetingKey: 'u1' }, storage: 'memory', storageName: uniqueStorageName('etag-other'), logger: createTestLogger(), clock: createManualClock() })
  await client.start()
  // A cache in front of the server that mixes up its entries (RFC 9110: a 304 carries the ETag a
  // 200 would have had, so "v2" says the current snapshot is not the "v1" held).
  server.always({ status: 304, headers: { ETag: '"v2"' } })
  const status = await client.refresh()
  expect(server.requests.at(-2)!.headers['if-none-match']).toBe('"v1"')
  // Asked again once without If-None-Match (CONTRACT §2.1): a 304 to that confirms nothing either.
  expect(server.requests.at(-1)!.headers['if-none-match']).toBeUndefined()
  // Before: `ready`, every held flag confirmed fresh from the network by an answer about another snapshot.
  expect(status).toMatchObject({ state: 'stale', error: { code: 'INVALID_RESPONSE' } })
  expect(client.getDetails('a', false)).toMatchObject({ value: true, stale: true })
  // W/"v1" names the same snapshot (a CDN that weakens tags as it compresses), and so does a 304 with no ETag.
  for (const headers of [{ ETag: 'W/"v1"' }, {}] as Array<Record<string, string>>) {
    server.always({ status: 304, headers })
    expect(await client.refresh()).toMatchObject({ state: 'ready', source: 'network' })
    expect(client.getDetails('a', false)).toMatchObject({ value: true, stale: false })
  }
  // Only the weak prefix is taken off: a tag that merely ends like the one sent is another tag.
  server.always({ status: 304, headers: { ETag: 'X"v1"' } })
  expect(await client.refresh()).toMatchObject({ state: 'stale', error: { code: 'INVALID_RESPONSE' } })
})

test('no If-None-Match after the context changes, even for the same targetingKey', async () => {
  client = createClient({ url: server.url, context: { targetingKey: 'u1', plan: 'free' }, storageName: uniqueStorageName('etag2'), logger: createTestLogger() })
  await client.start()
  await client.setContext({ targetingKey: 'u1', plan: 'pro' })
  expect(server.requests).toHaveLength(2)
  expect(server.requests[1].headers['if-none-match']).toBeUndefined()
  // Same context in another key order: the ETag applies again.
  await client.refresh()
  expect(server.requests[2].headers['if-none-match']).toBe('"v1"')
})

test('one request in flight: concurrent refreshes share it', async () => {
  server.always(delayed(flags([{ key: 'a', value: true }]), 100))
  client = createClient({ url: server.url, context: { targetingKey: 'u1' }, storageName: uniqueStorageName('inflight'), logger: createTestLogger() })
  const results = await Promise.all([client.start(), client.refresh(), client.refresh()])
  expect(server.requests).toHaveLength(1)
  expect(results.every((s) => s.state === 'ready')).toBe(true)
})

test('a server that is not there at all', async () => {
  await server.close()
  client = createClient({ url: server.url, context: { targetingKey: 'u1' }, storageName: uniqueStorageName('down'), logger: createTestLogger(), clock: createManualClock() })
  const status = await client.start()
  expect(status).toMatchObject({ state: 'error', error: { code: 'NETWORK' } })
  server = await createFaultServer()
})

test('a redirect to another origin is not followed: the API key and the context never reach it, and the status names the redirect', async () => {
  // A hijacked DNS name, a misrouted ingress, a login proxy answering 307: fetch (undici in Node,
  // React Native) re-sends the POST with every header but Authorization, so an X-API-Key and the
  // user's attributes went to whoever answered.
  const other = await createFaultServer(flags([{ key: 'a', value: false }], '"other"'))
  try {
    const logger = createTestLogger()
    client = createClient({
      url: server.url,
      context: { targetingKey: 'u1', email: 'u1@example.com' },
      headers: { 'X-API-Key': 'secret' },
      storage: 'memory',
      clock: createManualClock(),
      logger,
    })
    await client.start()
    expect(client.getValue('a', false)).toBe(true)
    server.always({ status: 307, headers: { Location: `${other.url.replace('127.0.0.1', 'localhost')}/ofrep/v1/evaluate/flags` } })
    const status = await client.refresh()
    expect(other.requests).toEqual([])
    // The values held stay; the status says why nothing new came.
    expect(client.getDetails('a', false)).toMatchObject({ value: true, stale: true })
    expect(status).toMatchObject({ state: 'stale', error: { code: 'HTTP', httpStatus: 307 } })
    expect(status.error!.message).toMatch(/redirect/)
    // Any other failure keeps its own words.
    server.always({ status: 502, raw: '' })
    expect((await client.refresh()).error).toMatchObject({ code: 'HTTP', httpStatus: 502, message: 'HTTP 502' })
  } finally {
    await other.close()
  }
})
