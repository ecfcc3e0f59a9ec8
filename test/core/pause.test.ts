// pause(): a page with no user (a logout) sends no flag request at all — polls, retries, focus,
// refresh() — until the next setContext, which fetches again, for the same user too. Events are
// not flag requests: they keep their own schedule.
import { afterEach, expect, test } from 'vitest'
import { createClient, type FlagClient } from '@holdfast/core'
import { createFaultServer, flags, type FaultServer } from '../support/faultServer'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'
import { fakeEnvironment } from '../support/environment'
import { liveClient, pollUntil, startStreamingOfrep } from '../support/streamingOfrep'
import { startEventsReceiver } from '../support/eventsReceiver'

let server: FaultServer | undefined
let client: FlagClient | undefined
afterEach(async () => {
  await client?.close()
  await server?.close()
})

const settle = () => new Promise((r) => setTimeout(r, 0))

test('nothing is asked while paused, whatever the trigger; setContext resumes, for the same user too', async () => {
  server = await createFaultServer(flags([{ key: 'plan', value: 'alice-plan' }]))
  const clock = createManualClock()
  const environment = fakeEnvironment()
  client = createClient({
    url: server.url,
    context: { targetingKey: 'alice' },
    storage: 'memory',
    storageName: uniqueStorageName('pause'),
    refreshIntervalMs: 30_000,
    environment,
    logger: createTestLogger(),
    clock,
  })
  await client.start()
  server.always({ status: 503 })
  await client.refresh() // fails: a retry is scheduled
  expect(clock.pending().length).toBeGreaterThan(0)

  client.pause()
  expect(clock.pending()).toEqual([]) // no retry, no poll left
  clock.advance(120_000)
  environment.fire('hidden')
  environment.fire('offline')
  environment.fire('online')
  environment.fire('focus')
  await client.refresh()
  await settle()
  expect(server.requests).toHaveLength(2)
  expect(client.getValue('plan', 'DEFAULT')).toBe('alice-plan') // held values stay readable

  server.always(flags([{ key: 'plan', value: 'alice-plan-2' }]))
  await client.setContext({ targetingKey: 'alice' })
  expect(server.requests).toHaveLength(3)
  expect(client.getValue('plan', 'DEFAULT')).toBe('alice-plan-2')
  clock.advance(30_000) // polling is back
  await server.waitForRequests(4)

  await client.refresh()
  client.pause()
  server.always(flags([{ key: 'plan', value: 'bob-plan' }]))
  await client.setContext({ targetingKey: 'bob' })
  expect(server.requests.map((r) => r.body.context.targetingKey)).toEqual(['alice', 'alice', 'alice', 'alice', 'bob'])
  expect(client.getValue('plan', 'DEFAULT')).toBe('bob-plan')
})

test("a paused client lets its live-update stream go (it was opened with the user's headers); the next answer after setContext opens it again", async () => {
  const s = await startStreamingOfrep(undefined, { notModified: false })
  const cleanup: Array<() => unknown> = []
  try {
    const c = liveClient(s.url, 'pause-live', cleanup, { headers: { Authorization: 'Bearer user-1' } })
    await c.start()
    await pollUntil(() => s.open.length === 1, 5000, 'the stream')
    const stream = s.open[0]
    // Paused while a request is out: its answer is applied, but opens no stream.
    const answered = c.refresh()
    c.pause()
    await answered
    // Before: the stream stayed open (and reconnected when dropped) for the user who left.
    await pollUntil(() => stream.destroyed || stream.closed, 2000, 'the stream to close')
    await new Promise((r) => setTimeout(r, 300)) // its retry is 100 ms: nothing reconnects
    expect(s.streamHeaders).toHaveLength(1)

    await c.setContext({ targetingKey: 'user-1' })
    await pollUntil(() => s.streamHeaders.length === 2, 5000, 'the stream again')
  } finally {
    for (const step of cleanup.splice(0).reverse()) await step()
    await s.close()
  }
})

test("after a pause (a logout), the next user is not shown the previous user's values while theirs load; the same user back keeps them", async () => {
  server = await createFaultServer((request) => flags([{ key: 'plan', value: `${request.body?.context?.targetingKey}-plan` }]))
  client = createClient({ url: server.url, context: { targetingKey: 'alice' }, storage: 'memory', logger: createTestLogger(), clock: createManualClock() })
  await client.start()
  client.pause()
  server.always('hang')
  void client.setContext({ targetingKey: 'bob' })
  expect(client.getStatus().state).toBe('loading')
  expect(client.getDetails('plan', 'DEFAULT')).toMatchObject({ value: 'DEFAULT', source: 'default' })
  // The same user back after a pause is still that user: their values stay.
  const other = createClient({ url: server.url, context: { targetingKey: 'dave' }, storage: 'memory', logger: createTestLogger(), clock: createManualClock() })
  server.always((request) => flags([{ key: 'plan', value: `${request.body?.context?.targetingKey}-plan` }]))
  await other.start()
  other.pause()
  server.always('hang')
  void other.setContext({ targetingKey: 'dave', plan: 'pro' })
  expect(other.getValue('plan', 'DEFAULT')).toBe('dave-plan')
  await other.close()
})

test('setContext without a targetingKey (a logout): nothing more is asked for the user who left, and what is logged after it is not theirs', async () => {
  // Before: the call was refused with an error log and nothing else. The page kept polling (and
  // refetching on focus) for the previous user, and logEvent recorded that user's targetingKey.
  server = await createFaultServer(flags([{ key: 'plan', value: 'alice-plan' }]))
  const receiver = await startEventsReceiver()
  const clock = createManualClock()
  const environment = fakeEnvironment()
  const logger = createTestLogger()
  // Counted as they are made (the server would see them only later).
  const asked: string[] = []
  const countingFetch: typeof fetch = (input, init) => {
    if (String(input).startsWith(server!.url)) asked.push(JSON.parse(String(init?.body)).context.targetingKey)
    return fetch(input, init)
  }
  try {
    client = createClient({
      fetch: countingFetch,
      url: server.url,
      context: { targetingKey: 'alice' },
      storage: 'memory',
      storageName: uniqueStorageName('logout-no-key'),
      refreshIntervalMs: 30_000,
      environment,
      logger,
      clock,
      events: { url: receiver.url },
    })
    await client.start()
    client.logEvent('before')
    const user = undefined as { id?: string } | undefined
    await client.setContext({ targetingKey: user?.id } as never)
    expect(logger.errors.filter((e) => e.includes('targetingKey'))).toHaveLength(1)
    clock.advance(120_000)
    environment.fire('focus')
    await settle()
    expect(asked).toEqual(['alice'])
    client.logEvent('after')
    // The previous user's values, if the app still reads them, are nobody's exposures now.
    expect(client.getValue('plan', 'DEFAULT')).toBe('alice-plan')
    await client.flush()
    const seen = () => receiver.events().map((e) => [e.type, e.name, e.targetingKey ?? null])
    expect(seen()).toEqual([
      ['custom', 'before', 'alice'],
      ['custom', 'after', null],
    ])

    // The next user resumes everything.
    server.always(flags([{ key: 'plan', value: 'bob-plan' }]))
    await client.setContext({ targetingKey: 'bob' })
    expect(client.getValue('plan', 'DEFAULT')).toBe('bob-plan')
    client.logEvent('bob')
    await client.flush()
    expect(seen().slice(2)).toEqual([
      ['exposure', 'plan', 'bob'],
      ['custom', 'bob', 'bob'],
    ])
  } finally {
    await client?.close()
    await receiver.close()
  }
})

test("after a pause (a logout), the fallback the next user is shown once their cache was read is their exposure, as on a first visit", async () => {
  server = await createFaultServer((request) => flags([{ key: 'plan', value: `${request.body?.context?.targetingKey}-plan` }]))
  const receiver = await startEventsReceiver()
  try {
    const fallback = { context: { targetingKey: 'anyone' }, flags: [{ key: 'plan', value: 'basic' }], fetchedAt: 0 }
    client = createClient({
      url: server.url,
      context: { targetingKey: 'alice' },
      fallback,
      storage: 'memory',
      storageName: uniqueStorageName('pause-fallback'),
      events: { url: receiver.url, flushIntervalMs: 60_000 },
      logger: createTestLogger(),
      clock: createManualClock(),
    })
    await client.start()
    expect(client.getValue('plan', 'DEFAULT')).toBe('alice-plan')
    client.pause()
    server.always('hang')
    void client.setContext({ targetingKey: 'bob' })
    await pollUntil(() => client!.getStatus().cacheRead === true, 5000)
    // Nothing cached for bob, his answer out: the fallback, any user's, is what he sees.
    expect(client.getDetails('plan', 'DEFAULT', { exposure: false })).toMatchObject({ value: 'basic', source: 'fallback' })
    expect(client.getValue('plan', 'DEFAULT')).toBe('basic')
    await client.flush()
    // Before: alice's only — bob's values counted as standing in (not his) although no one else's were shown.
    expect(receiver.events().filter((e) => e.type === 'exposure').map((e) => [e.targetingKey, e.value])).toEqual([
      ['alice', 'alice-plan'],
      ['bob', 'basic'],
    ])
  } finally {
    await receiver.close()
  }
})

test('after a logout that cleared the cache, a user signing in again sees what a first visit sees, whoever signed in meanwhile (CONTRACT §5: nothing of his is held or cached)', async () => {
  const fallback = { context: { targetingKey: 'anyone' }, flags: [{ key: 'plan', value: 'basic' }], fetchedAt: 0 }
  const answer = (request: { body?: { context?: { targetingKey?: string } } }) => flags([{ key: 'plan', value: `${request.body?.context?.targetingKey}-plan` }])
  // What bob sees while his answer is out, and once it failed (an outage), after: bob answered; carol
  // signed in (answered or not); logout, clearCache(); bob signs in again.
  async function bobBack(carolAnswered: boolean, outage: boolean) {
    server = await createFaultServer(answer)
    client = createClient({ url: server.url, context: { targetingKey: 'bob' }, fallback, storage: 'memory', logger: createTestLogger(), clock: createManualClock() })
    await client.start()
    expect(client.getValue('plan', 'DEFAULT')).toBe('bob-plan')
    if (!carolAnswered) server.always('hang')
    const carol = client.setContext({ targetingKey: 'carol' })
    if (carolAnswered) expect((await carol).source).toBe('network')
    client.pause()
    await client.clearCache()
    server.always(outage ? { status: 503 } : 'hang')
    const bob = client.setContext({ targetingKey: 'bob' })
    if (outage) await bob
    else await pollUntil(() => client!.getStatus().cacheRead === true, 5000)
    const seen = { value: client.getDetails('plan', 'DEFAULT').value, state: client.getStatus().state, source: client.getStatus().source }
    await client.close()
    await server.close()
    client = server = undefined
    return seen
  }
  // A first visit of bob (a fresh tab, or this one reloaded) is shown the fallback, and keeps it through an outage.
  for (const carolAnswered of [false, true]) {
    // Before: the caller's defaults when carol had no answer (the page remembered only its latest
    // answered context, bob's), the fallback when she had one: one user, two behaviours.
    expect(await bobBack(carolAnswered, false)).toEqual({ value: 'basic', state: 'loading', source: 'fallback' })
    expect(await bobBack(carolAnswered, true)).toEqual({ value: 'basic', state: 'error', source: 'fallback' })
  }
})

/**
 * alice answered, then refused by a 401 with `clearCacheOnUnauthorized`: her values dropped, her
 * answer applied before, so the caller's defaults for her (§5). The server hangs from then on; the
 * returned list holds what `plan`'s listener read at each notification.
 */
async function aliceRefused(answer: Parameters<typeof createFaultServer>[0]): Promise<{ c: FlagClient; listened: string[] }> {
  const fallback = { context: { targetingKey: 'anyone' }, flags: [{ key: 'plan', value: 'basic' }], fetchedAt: 0 }
  server = await createFaultServer(answer)
  const listened: string[] = []
  client = createClient({
    url: server.url,
    context: { targetingKey: 'alice' },
    fallback,
    clearCacheOnUnauthorized: true,
    storage: 'memory',
    logger: createTestLogger(),
    clock: createManualClock(),
  })
  await client.start()
  server.always({ status: 401 })
  await client.refresh()
  expect(client.getDetails('plan', 'DEFAULT')).toMatchObject({ value: 'DEFAULT', source: 'default' })
  client.subscribeFlag('plan', () => listened.push(client!.getValue('plan', 'DEFAULT')))
  server.always('hang')
  return { c: client, listened }
}

test("after a user shown the caller's defaults alone (his values dropped at a 401), the next user with nothing cached is shown the fallback while his answer is out, as on a first visit", async () => {
  const { c, listened } = await aliceRefused((request) => flags([{ key: 'plan', value: `${request.body?.context?.targetingKey}-plan` }]))
  void c.setContext({ targetingKey: 'bob' })
  await pollUntil(() => c.getStatus().cacheRead === true, 5000)
  // Before: the defaults (alice's nothing standing in), where bob's first visit shows the fallback.
  expect(c.getDetails('plan', 'DEFAULT')).toMatchObject({ value: 'basic', source: 'fallback', stale: true })
  expect(c.getStatus()).toMatchObject({ state: 'loading', source: 'fallback' })
  expect(listened).toEqual(['basic'])
})

test("after a 401 dropped a user's values (the caller's defaults), the same user with other attributes is shown the fallback while his answer is out, as his first visit of them, not the defaults until a second 401 brings the fallback back", async () => {
  const { c, listened } = await aliceRefused(flags([{ key: 'plan', value: 'alice-plan' }]))
  void c.setContext({ targetingKey: 'alice', plan: 'pro' }) // the app learnt her plan
  await pollUntil(() => c.getStatus().cacheRead === true, 5000)
  // Before: the defaults while her answer was out (her nothing kept as hers), then the fallback at
  // her next 401: a refusal put values on screen. A reload (her entry removed at the 401) shows the fallback.
  expect(c.getDetails('plan', 'DEFAULT')).toMatchObject({ value: 'basic', source: 'fallback', stale: true })
  expect(c.getStatus()).toMatchObject({ state: 'loading', source: 'fallback' })
  expect(listened).toEqual(['basic'])
})

test('pause() after close() (a logout handler running after the provider unmounted) changes nothing: no listener told, the status as close() left it', async () => {
  server = await createFaultServer(flags([{ key: 'plan', value: 'alice-plan' }]))
  const c = createClient({ url: server.url, context: { targetingKey: 'alice' }, storage: 'memory', storageName: uniqueStorageName('pause-closed'), logger: createTestLogger() })
  await c.start()
  await c.close()
  const closed = c.getStatus()
  let told = 0
  c.subscribe(() => told++)
  expect(() => c.pause()).not.toThrow()
  await c.setContext({ targetingKey: undefined } as never) // a logout through setContext: the same
  await c.setContext({ targetingKey: 'alice' }) // ignored after close: it could never end a pause
  // Before: told once, and the closed client said `paused: true` for good (no setContext could end it).
  expect(told).toBe(0)
  expect(c.getStatus()).toBe(closed)
  expect(c.getStatus().paused).toBeUndefined()
  expect(c.getValue('plan', 'DEFAULT')).toBe('alice-plan')
})

test('pause() before start(), then the same user back before start(): nothing is asked until start(), which asks once', async () => {
  server = await createFaultServer(flags([{ key: 'plan', value: 'alice-plan' }]))
  client = createClient({ url: server.url, context: { targetingKey: 'alice' }, storage: 'memory', storageName: uniqueStorageName('pause-unstarted'), logger: createTestLogger() })
  client.pause() // a logged-out first render
  await client.setContext({ targetingKey: 'alice' }) // she signs in before the app starts the client
  // Before: a request went out from setContext on a client not started (one per login), and start() asked again.
  expect(server.requests).toHaveLength(0)
  expect(client.getStatus().paused).toBeUndefined()
  await client.start()
  expect(server.requests).toHaveLength(1)
  expect(client.getValue('plan', 'DEFAULT')).toBe('alice-plan')
})
