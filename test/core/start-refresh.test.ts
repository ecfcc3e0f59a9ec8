// start() and refresh() called together (an app that refreshes on mount, a provider and a page
// script both kicking the client): CONTRACT §4 allows one request in flight per client, and one
// answer that settles every call need not be asked for twice.
//
//   start()    read cache (a slow IndexedDB) ─────────────── entry lands ── (no second request)
//   refresh()      request ──── 200 applied: refresh() resolves, start() with the same answer
import { afterEach, beforeEach, expect, test } from 'vitest'
import { createClient, createMemoryStorage, type FlagClient, type FlagStorage } from '@holdfast/core'
import { createFaultServer, delayed, flags, type FaultServer } from '../support/faultServer'
import { createManualClock, createTestLogger } from '../support/clock'
import { fakeEnvironment } from '../support/environment'

let server: FaultServer
const clients: FlagClient[] = []
beforeEach(async () => {
  server = await createFaultServer(flags([{ key: 'kill', value: true }], '"e1"'))
})
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await server.close()
})

function make(storage: FlagStorage | 'memory' = 'memory') {
  const client = createClient({ url: server.url, context: { targetingKey: 'alice' }, storage, logger: createTestLogger(), clock: createManualClock(), refreshOnFocus: false, liveUpdates: false })
  clients.push(client)
  return client
}

test('start() then refresh() at once: one request, both resolve with its answer applied', async () => {
  server.always(delayed(flags([{ key: 'kill', value: true }], '"e1"'), 50))
  const client = make()
  const [started, refreshed] = await Promise.all([client.start(), client.refresh()])
  // One request: none overlapping, none asked twice.
  expect(server.requests.length).toBe(1)
  expect(started).toMatchObject({ state: 'ready', source: 'network' })
  expect(refreshed).toMatchObject({ state: 'ready', source: 'network' })
  expect(client.getDetails('kill', false)).toMatchObject({ value: true, source: 'network' })
})

test('two refresh() calls in one tick after start: one request, both resolve with its answer applied', async () => {
  const client = make()
  await client.start()
  server.always(delayed(flags([{ key: 'kill', value: false }], '"e2"'), 50))
  const before = server.requests.length
  const [a, b] = await Promise.all([client.refresh(), client.refresh()])
  expect(server.requests.length - before).toBe(1)
  expect(client.getGate('kill', true)).toBe(false)
  expect(a).toMatchObject({ state: 'ready' })
  expect(b).toMatchObject({ state: 'ready' })
})

test('start() then refresh() with a slow cache read: the refresh answer settles start() too, no second request', async () => {
  // Yesterday's page saved alice's entry.
  const inner = createMemoryStorage()
  const first = make(inner)
  await first.start()
  await first.close()
  const seen = server.requests.length

  let open = () => {}
  const gate = new Promise<void>((resolve) => (open = resolve))
  const slow: FlagStorage = { ...inner, get: async (key) => (await gate, inner.get(key)) }
  const client = make(slow)
  const started = client.start()
  const refreshed = await client.refresh()
  expect(refreshed).toMatchObject({ state: 'ready', source: 'network' })
  open()
  expect(await started).toMatchObject({ state: 'ready', source: 'network' })
  // Before: start() sent its own request once the entry was read, the same question asked again
  // at once (two requests for one page load).
  expect(server.requests.length - seen).toBe(1)
})

// An app that asks before it starts the client (a refresh() in a handler that ran before the
// provider's effect), while the server blips:
//
//   refresh()  ── 503 (the scheduler is not running yet: no retry timer is armed)
//   start()    read cache ── the attempt already failed: no request, and no retry either
test('start() after a refresh() that failed before it: start() asks again (or the retry does); the page recovers without a focus or a reload', async () => {
  server.always({ status: 503 })
  const clock = createManualClock()
  const client = createClient({ url: server.url, context: { targetingKey: 'alice' }, storage: 'memory', logger: createTestLogger(), clock, random: () => 0.5, refreshOnFocus: false, liveUpdates: false })
  clients.push(client)
  expect(await client.refresh()).toMatchObject({ state: 'error', error: { code: 'HTTP', httpStatus: 503 } })
  server.always(flags([{ key: 'kill', value: true }], '"e1"'))
  await client.start()
  // Past any backoff (1 s doubling, here 1.5 s at the first): a retry is due by now.
  for (let i = 0; i < 5; i++) {
    clock.advance(10_000)
    await new Promise((r) => setTimeout(r, 20))
  }
  // Before: start() saw that an attempt had finished and made none, and the 503's retry was never
  // armed (the scheduler started after it): `error` for the life of the page, the 200 never asked for.
  expect(server.requests.length).toBeGreaterThanOrEqual(2)
  expect(client.getStatus()).toMatchObject({ state: 'ready', source: 'network' })
  expect(client.getGate('kill')).toBe(true)
})

// Whichever way start() settles (its own request, or one a refresh() made before or during its
// cache read), it starts what start() starts: polling and the focus refetch.
test.each([
  ['a refresh() during a slow cache read', 'during'],
  ['a refresh() before start()', 'before'],
  ['start() alone', 'none'],
] as const)('start() with %s: polling and the focus refetch run afterwards', async (_name, when) => {
  const inner = createMemoryStorage()
  let open = () => {}
  const gate = new Promise<void>((resolve) => (open = resolve))
  const storage: FlagStorage = { ...inner, get: async (key) => (await gate, inner.get(key)) }
  const clock = createManualClock()
  const environment = fakeEnvironment()
  const client = createClient({ url: server.url, context: { targetingKey: 'alice' }, storage, logger: createTestLogger(), clock, environment, refreshIntervalMs: 30_000, liveUpdates: false })
  clients.push(client)
  if (when == 'before') await client.refresh()
  const started = client.start()
  if (when == 'during') await client.refresh()
  open()
  expect(await started).toMatchObject({ state: 'ready', source: 'network' })
  const sent = server.requests.length
  clock.advance(30_000)
  await server.waitForRequests(sent + 1)
  await new Promise((r) => setTimeout(r, 25)) // its answer applied (a focus meanwhile joins it)
  clock.advance(6_000) // past the focus throttle (5 s since the last request)
  environment.fire('focus')
  await server.waitForRequests(sent + 2)
  expect(environment.listeners()).toBeGreaterThan(0)
})
