// CONTRACT §5 (setContext, fallback per context) and §6 (exposures of stand-in values), through the
// public API against a real OFREP server and events receiver on 127.0.0.1.
import { afterEach, expect, test } from 'vitest'
import { createClient, type ClientOptions, type EvaluationContext, type FlagClient } from '@holdfast/core'
import { createFaultServer, flags, type FaultServer } from '../support/faultServer'
import { startEventsReceiver, type EventsReceiver } from '../support/eventsReceiver'
import { createManualClock, createTestLogger, throughTimeout, uniqueStorageName } from '../support/clock'

let server: FaultServer | undefined
let receiver: EventsReceiver | undefined
const clients: FlagClient[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await server?.close()
  await receiver?.close()
  server = receiver = undefined
})

const fallback = { context: { targetingKey: 'anyone' }, flags: [{ key: 'plan', value: 'fb-plan' }, { key: 'fb-only', value: 'fb' }], fetchedAt: 1 }

function make(options: Partial<ClientOptions> = {}) {
  const clock = createManualClock()
  const client = createClient({
    url: server?.url as string,
    context: { targetingKey: 'alice' },
    storageName: uniqueStorageName('contract-s5'),
    clock,
    logger: createTestLogger(),
    requestTimeoutMs: 300,
    liveUpdates: false,
    ...options,
  } as ClientOptions)
  clients.push(client)
  return { client, clock }
}

const byUser = (request: { body: any }) => flags([{ key: 'plan', value: `${request.body?.context?.targetingKey}-plan` }])

// §5: "the new user's flags come from fallback or the caller's defaults (state error)"; the
// fallback is no longer used once a success applied for the *current* context, and a new user has
// had none.
test("a new user whose first attempt fails gets the fallback, not the previous user's values nor defaults where the fallback has them", async () => {
  server = await createFaultServer(byUser)
  const { client } = make({ fallback })
  await client.start()
  expect(client.getDetails('plan', '')).toMatchObject({ value: 'alice-plan', source: 'network' })
  // Alice's success ended the fallback for her.
  expect(client.getDetails('fb-only', 'dflt')).toMatchObject({ value: 'dflt', source: 'default' })
  server.always({ status: 503, raw: '' })
  expect(await client.setContext({ targetingKey: 'bob' })).toMatchObject({ state: 'error' })
  expect(client.getDetails('plan', '')).toMatchObject({ value: 'fb-plan', source: 'fallback', stale: true })
  expect(client.getDetails('fb-only', 'dflt')).toMatchObject({ value: 'fb', source: 'fallback' })
  // Bob's own answer ends it for him.
  server.always(byUser)
  await client.refresh()
  expect(client.getDetails('plan', '')).toMatchObject({ value: 'bob-plan', source: 'network', stale: false })
  expect(client.getDetails('fb-only', 'dflt')).toMatchObject({ value: 'dflt', source: 'default' })
})

// §5: while the new user's values load, the previous user's stay visible (no flash of defaults),
// state loading; they never carry a source that claims they are the new user's, and they go at
// once when the new user's first attempt fails with nothing cached (a timeout here).
test("during a switch the previous user's values stand in as stale, state loading; a timeout drops them for the defaults", async () => {
  server = await createFaultServer(byUser)
  const { client, clock } = make()
  await client.start()
  server.always('hang')
  const switching = throughTimeout(clock, server, 300, () => client.setContext({ targetingKey: 'bob' }))
  expect(client.getStatus().state).toBe('loading')
  // Not confirmed for bob: stale, and no source that claims them as bob's (network, cache,
  // bootstrap): they stand in for him as a fallback does, for any user.
  expect(client.getDetails('plan', 'dflt')).toMatchObject({ value: 'alice-plan', source: 'fallback', stale: true })
  const status = await switching
  expect(status).toMatchObject({ state: 'error', error: { code: 'TIMEOUT' } })
  expect(client.getDetails('plan', 'dflt')).toMatchObject({ value: 'dflt', source: 'default' })
  expect(client.snapshot().flags).toEqual([])
})

// §5: a user seen before shows their cached values at once, before their request is answered.
test('switching to a cached user shows their cached values before the network answers, state ready with source cache', async () => {
  server = await createFaultServer(byUser)
  const { client } = make()
  await client.start()
  await client.setContext({ targetingKey: 'bob' })
  server.always('hang')
  void client.setContext({ targetingKey: 'alice' })
  await server.waitForRequests(3)
  expect(client.getDetails('plan', '')).toMatchObject({ value: 'alice-plan', source: 'cache' })
  expect(client.getStatus()).toMatchObject({ state: 'ready', source: 'cache' })
})

// §5: the cache holds no raw targeting key or attributes: the bytes a custom storage is given.
test('nothing written to storage for the flag cache carries the targeting key or an attribute value', async () => {
  server = await createFaultServer(flags([{ key: 'plan', value: 'gold' }], '"e1"'))
  const written: string[] = []
  const map = new Map<string, unknown>()
  const storage = {
    get: async (k: string) => map.get(k),
    set: async (k: string, v: unknown) => void (written.push(k + JSON.stringify(v)), map.set(k, v)),
    del: async (k: string) => void map.delete(k),
    keys: async () => [...map.keys()],
  }
  const { client } = make({ storage, context: { targetingKey: 'u-7f3a91', email: 'zed@corp.example', org: 'org-55821' } })
  await client.start()
  await client.close()
  const all = written.join('\n')
  expect(all).toContain('gold')
  for (const secret of ['u-7f3a91', 'zed@corp.example', 'org-55821']) expect(all).not.toContain(secret)
})

/** A client of the events receiver's flags for `context`, sending its events there (flushed by hand). */
function withEvents(context: EvaluationContext) {
  return make({ url: receiver!.flagsUrl, context, storageName: uniqueStorageName('contract-s6'), events: { url: receiver!.url, flushIntervalMs: 60_000 } }).client
}

// §6: no exposure for a value that only stands in.
test("no exposure for the previous user's values shown during a switch; the new user's values are exposed once", async () => {
  receiver = await startEventsReceiver()
  receiver.setFlags([{ key: 'plan', value: 'shared', variant: 'v' }])
  const client = withEvents({ targetingKey: 'alice' })
  await client.start()
  client.getValue('plan', '')
  await client.flush()
  // Until bob's answer is in, alice's values are on screen.
  const switching = client.setContext({ targetingKey: 'bob' })
  expect(client.getStatus().state).toBe('loading')
  for (let i = 0; i < 3; i++) client.getValue('plan', '')
  expect(client.getEventStats().queued).toBe(0)
  await switching
  client.getValue('plan', '')
  await client.flush()
  const exposures = receiver.events().filter((e) => e.type === 'exposure')
  expect(exposures.map((e) => [e.targetingKey, e.value, e.variant])).toEqual([
    ['alice', 'shared', 'v'],
    ['bob', 'shared', 'v'],
  ])
})

// §6: "one per (context, flag, value, variant)": the whole context, not only the targetingKey.
test('the same value for the same user with other attributes is another exposure; the same context again is not', async () => {
  receiver = await startEventsReceiver()
  receiver.setFlags([{ key: 'color', value: 'red', variant: 'r' }])
  const client = withEvents({ targetingKey: 'alice', plan: 'free' })
  await client.start()
  client.getValue('color', '')
  await client.setContext({ targetingKey: 'alice', plan: 'pro' })
  client.getValue('color', '')
  await client.setContext({ targetingKey: 'alice', plan: 'free' })
  client.getValue('color', '')
  await client.flush()
  expect(receiver.events().filter((e) => e.type === 'exposure').map((e) => [e.targetingKey, e.value, e.variant])).toEqual([
    ['alice', 'red', 'r'],
    ['alice', 'red', 'r'],
  ])
})

// §5: the cache "never expires by default": a visit a year and more later, with the flag server
// down, still shows what the last visit was answered, dated when it came.
test('values cached 400 days ago are served on the next visit with the server down, stale, with their old updatedAt', async () => {
  server = await createFaultServer(flags([{ key: 'kill', value: true, variant: 'on' }]))
  const storageName = uniqueStorageName('contract-s5-no-expiry')
  const days400 = 400 * 24 * 60 * 60 * 1000
  const then = createManualClock()
  const seed = createClient({ url: server.url, context: { targetingKey: 'alice' }, storageName, logger: createTestLogger(), liveUpdates: false, clock: { ...then, now: () => then.now() - days400 } })
  await seed.start()
  const cachedAt = seed.getDetails('kill', false).updatedAt!
  await seed.close()

  server.always({ status: 503, raw: '' })
  const { client } = make({ storageName })
  expect(await client.start()).toMatchObject({ state: 'stale', source: 'cache', error: { code: 'HTTP', httpStatus: 503 } })
  expect(client.getDetails('kill', false)).toMatchObject({ value: true, variant: 'on', source: 'cache', stale: true, updatedAt: cachedAt })
})
