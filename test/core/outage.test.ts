// Every fault the flag server can throw at a client: the values held before are served unchanged
// afterwards, status and details say what happened, and when the fault ends the next attempt
// brings fresh values.
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { createClient, type FlagClient } from '@holdfast/core'
import { createFaultServer, flags, type FaultServer, type Reply } from '../support/faultServer'
import { createManualClock, createTestLogger, throughTimeout, uniqueStorageName, type ManualClock } from '../support/clock'

const before = [
  { key: 'kill-switch', value: false, variant: 'off', reason: 'STATIC' },
  { key: 'banner', value: { text: 'hello' }, variant: 'v1', reason: 'TARGETING_MATCH' },
]
const after = [
  { key: 'kill-switch', value: false, variant: 'off', reason: 'STATIC' },
  { key: 'banner', value: { text: 'fresh' }, variant: 'v2', reason: 'TARGETING_MATCH' },
]

let server: FaultServer
let client: FlagClient
let clock: ManualClock
beforeEach(async () => {
  server = await createFaultServer(flags(before))
})
afterEach(async () => {
  await client?.close()
  await server.close()
})

function start(options: Partial<Parameters<typeof createClient>[0]> = {}) {
  clock = createManualClock()
  client = createClient({
    url: server.url,
    context: { targetingKey: 'user-1' },
    storageName: uniqueStorageName('outage'),
    requestTimeoutMs: 300,
    logger: createTestLogger(),
    clock, // retries and timeouts wait for the test, so each attempt below is explicit
    ...options,
  })
  return client.start()
}

const html = '<!doctype html><html><body>Please log in to the Wi-Fi</body></html>'
const faults: [string, Reply, { state: string; code: string; httpStatus?: number }][] = [
  ['400 bad context', { status: 400, body: { errorCode: 'INVALID_CONTEXT' } }, { state: 'error', code: 'INVALID_CONTEXT', httpStatus: 400 }],
  ['401', { status: 401, body: {} }, { state: 'error', code: 'UNAUTHORIZED', httpStatus: 401 }],
  ['403', { status: 403, body: {} }, { state: 'error', code: 'UNAUTHORIZED', httpStatus: 403 }],
  ['404', { status: 404, raw: 'not found' }, { state: 'stale', code: 'HTTP', httpStatus: 404 }],
  ['408', { status: 408, raw: '' }, { state: 'stale', code: 'HTTP', httpStatus: 408 }],
  ['429', { status: 429, raw: '', headers: { 'Retry-After': '0' } }, { state: 'stale', code: 'HTTP', httpStatus: 429 }],
  ['500', { status: 500, raw: 'boom' }, { state: 'stale', code: 'HTTP', httpStatus: 500 }],
  ['502', { status: 502, raw: '<html>bad gateway</html>', headers: { 'Content-Type': 'text/html' } }, { state: 'stale', code: 'HTTP', httpStatus: 502 }],
  ['503', { status: 503, raw: '' }, { state: 'stale', code: 'HTTP', httpStatus: 503 }],
  ['504', { status: 504, raw: '' }, { state: 'stale', code: 'HTTP', httpStatus: 504 }],
  ['connection reset', 'reset', { state: 'stale', code: 'NETWORK' }],
  ['hang past the timeout', 'hang', { state: 'stale', code: 'TIMEOUT' }],
  ['200 with an HTML captive portal', { status: 200, raw: html, headers: { 'Content-Type': 'text/html' } }, { state: 'stale', code: 'INVALID_RESPONSE' }],
  ['200 {}', { status: 200, body: {} }, { state: 'stale', code: 'INVALID_RESPONSE' }],
  ['200 []', { status: 200, body: [] }, { state: 'stale', code: 'INVALID_RESPONSE' }],
  ['200 {"flags": []}', { status: 200, body: { flags: [] } }, { state: 'stale', code: 'EMPTY_RESPONSE' }],
  ['200 truncated JSON', { status: 200, raw: '{"flags": [{"key": "kill-sw', headers: { 'Content-Type': 'application/json' } }, { state: 'stale', code: 'INVALID_RESPONSE' }],
  ['200 JSON without a content type', { status: 200, raw: '{"flags": 3}' }, { state: 'stale', code: 'INVALID_RESPONSE' }],
  ['200 "flags" not an array', { status: 200, body: { flags: { 'kill-switch': true } } }, { state: 'stale', code: 'INVALID_RESPONSE' }],
]

describe.each(faults)('%s', (_name, fault, expected) => {
  test('keeps every held value, reports it, and recovers', async () => {
    await start()
    expect(client.getStatus().state).toBe('ready')
    expect(client.getGate('kill-switch', true)).toBe(false)

    server.always(fault)
    const status = fault === 'hang' ? await throughTimeout(clock, server, 300, () => client.refresh()) : await client.refresh()
    expect(status.state).toBe(expected.state)
    expect(status.error?.code).toBe(expected.code)
    expect(status.error?.httpStatus).toBe(expected.httpStatus)
    expect(status.source).toBe('network')
    expect(status.lastSuccessAt).toBeTypeOf('number')

    // The kill switch did not fire, the banner did not vanish.
    expect(client.getGate('kill-switch', true)).toBe(false)
    expect(client.getConfig('banner')).toEqual({ text: 'hello' })
    const details = client.getDetails('banner', {})
    expect(details).toMatchObject({ value: { text: 'hello' }, source: 'network', variant: 'v1', stale: true })

    server.always(flags(after))
    // A Retry-After (even `0`, raised to the base delay) holds refresh() back until its retry:
    // moving time past it fires the retry, which refresh() then joins.
    clock.advance(60_000)
    const recovered = await client.refresh()
    expect(recovered.state).toBe('ready')
    expect(recovered.error).toBeUndefined()
    expect(client.getDetails('banner', {})).toMatchObject({ value: { text: 'fresh' }, variant: 'v2', stale: false, source: 'network' })
  })
})

test('a fault before any value leaves the defaults and the state error', async () => {
  server.always({ status: 503, raw: '' })
  const status = await start()
  expect(status.state).toBe('error')
  expect(status.source).toBe('none')
  expect(client.getGate('kill-switch', true)).toBe(true)
  expect(client.getDetails('kill-switch', true)).toMatchObject({ source: 'default', errorCode: 'FLAG_NOT_FOUND' })
})

test('{"flags": []} is accepted with acceptEmptyResponse', async () => {
  await start({ acceptEmptyResponse: true })
  server.always({ status: 200, body: { flags: [] } })
  const status = await client.refresh()
  expect(status.state).toBe('ready')
  expect(client.getDetails('kill-switch', true)).toMatchObject({ value: true, source: 'default' })
})

test('a clean empty response is fine when nothing is held', async () => {
  server.always(flags([]))
  expect((await start()).state).toBe('ready')
})

// A relay answering through its upstream's blip says so (`metadata.holdfast.stale: true`). It is a
// success, so nothing asked again: with polling off (the default) and no live updates, the page
// stayed `stale` with the blip's values for its life. It asks again on the failure backoff.
test("a relay's stale answer is asked again on the backoff until a fresh one comes, without polling", async () => {
  const stale = (fetchedAt: number) => ({ status: 200, body: { flags: before, metadata: { holdfast: { source: 'upstream', fetchedAt, stale: true } } } })
  server.always(stale(1))
  const status = await start({ refreshIntervalMs: 0, refreshOnFocus: false, liveUpdates: false })
  expect(status).toMatchObject({ state: 'stale', error: { code: 'UPSTREAM_STALE' } })
  expect(server.requests).toHaveLength(1)

  // One re-ask is armed, on the failure backoff (and no request is out: its 300 ms timeout timer is gone).
  const armed = () => clock.pending().length === 1 && clock.pending()[0] !== 300
  await pollFor(armed)
  const [first] = clock.pending()
  expect(first).toBeGreaterThan(0)
  expect(first).toBeLessThanOrEqual(60_000)

  // Still stale on the re-ask: one more is armed, never back to back.
  clock.fireNext()
  await server.waitForRequests(2)
  await pollFor(armed)
  expect(client.getStatus().state).toBe('stale')
  expect(clock.pending()).toHaveLength(1)
  expect(clock.pending()[0]).toBeGreaterThan(0)
  expect(clock.pending()[0]).toBeLessThanOrEqual(60_000)

  // The upstream is back: the next re-ask brings fresh values, and then nothing more is armed.
  server.always(flags(after))
  clock.fireNext()
  await server.waitForRequests(3)
  await pollFor(() => client.getStatus().state === 'ready')
  expect(client.getStatus().error).toBeUndefined()
  expect(client.getDetails('banner', {})).toMatchObject({ value: { text: 'fresh' }, stale: false })
  expect(clock.pending()).toEqual([])
  expect(server.requests).toHaveLength(3)
})

async function pollFor(check: () => boolean) {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((done) => setTimeout(done, 10))
}
