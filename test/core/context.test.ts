// Switching users: cached values at once, otherwise no flash of defaults, and late answers for
// the previous user are discarded.
import { afterEach, beforeEach, expect, test } from 'vitest'
import { createClient, type FlagClient } from '@holdfast/core'
import { createFaultServer, delayed, flags, type FaultServer } from '../support/faultServer'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'

let server: FaultServer
let client: FlagClient
beforeEach(async () => {
  server = await createFaultServer(flags([{ key: 'plan', value: 'alice-plan' }]))
  client = createClient({ url: server.url, context: { targetingKey: 'alice' }, storageName: uniqueStorageName('ctx'), logger: createTestLogger(), clock: createManualClock() })
  await client.start()
})
afterEach(async () => {
  await client.close()
  await server.close()
})

test('without cached values the previous values stay visible and the state is loading until the new ones arrive', async () => {
  server.always(delayed(flags([{ key: 'plan', value: 'bob-plan' }]), 100))
  const seen: string[] = []
  client.subscribeFlag('plan', () => seen.push(client.getValue('plan', 'DEFAULT')))
  const switching = client.setContext({ targetingKey: 'bob' })
  expect(client.getStatus().state).toBe('loading')
  // Only a 200/304 moves lastSuccessAt; a switch does not erase it.
  expect(client.getStatus().lastSuccessAt).toBeTypeOf('number')
  expect(client.getValue('plan', 'DEFAULT')).toBe('alice-plan')
  expect(client.getContext().targetingKey).toBe('bob')
  const status = await switching
  expect(status.state).toBe('ready')
  expect(client.getValue('plan', 'DEFAULT')).toBe('bob-plan')
  expect(seen).not.toContain('DEFAULT')
})

test('a user seen before shows their cached values at once', async () => {
  server.always(flags([{ key: 'plan', value: 'bob-plan' }]))
  await client.setContext({ targetingKey: 'bob' })
  server.always('hang')
  const back = client.setContext({ targetingKey: 'alice' })
  expect(client.getDetails('plan', '')).toMatchObject({ value: 'alice-plan', source: 'cache' })
  expect(client.getStatus().state).toBe('ready')
  void back
})

test('a response for the old context is discarded; the old request is aborted', async () => {
  server.next(delayed(flags([{ key: 'plan', value: 'alice-late' }]), 150))
  server.always(delayed(flags([{ key: 'plan', value: 'bob-plan' }]), 10))
  const stale = client.refresh()
  await server.waitForRequests(2)
  await client.setContext({ targetingKey: 'bob' })
  await stale
  await new Promise((r) => setTimeout(r, 200))
  // alice's request was given up while the server was still working on it...
  expect(server.requests[1]).toMatchObject({ abandoned: true, body: { context: { targetingKey: 'alice' } } })
  // ...and nothing of it reached the screen.
  expect(client.getValue('plan', '')).toBe('bob-plan')
  expect(server.requests.at(-1)!.body.context.targetingKey).toBe('bob')
})

test("a failure for a new user with nothing cached is an error, and the old user's values are dropped", async () => {
  server.always({ status: 503, raw: '' })
  const status = await client.setContext({ targetingKey: 'carol' })
  expect(status.state).toBe('error')
  // Carol is never shown Alice's plan once her own attempt has failed.
  expect(client.getDetails('plan', 'd')).toMatchObject({ value: 'd', source: 'default', errorCode: 'FLAG_NOT_FOUND' })
})

test('the same context by value is not a switch', async () => {
  const before = server.requests.length
  await client.setContext({ targetingKey: 'alice' })
  expect(server.requests.length).toBe(before)
})

test('a Date attribute is part of the context as it is sent: another date is another context', async () => {
  // The request body carries the ISO string (JSON.stringify); the identity must read it the same
  // way, or every Date would be `{}` and a changed date no switch at all.
  server.always(flags([{ key: 'plan', value: 'early-adopter' }]))
  await client.setContext({ targetingKey: 'alice', signedUpAt: new Date(Date.UTC(2020, 0, 1)) })
  expect(server.requests.at(-1)!.body.context.signedUpAt).toBe('2020-01-01T00:00:00.000Z')
  server.always(flags([{ key: 'plan', value: 'newcomer' }]))
  const before = server.requests.length
  await client.setContext({ targetingKey: 'alice', signedUpAt: new Date(Date.UTC(2025, 0, 1)) })
  expect(server.requests.length).toBe(before + 1)
  expect(server.requests.at(-1)!.body.context.signedUpAt).toBe('2025-01-01T00:00:00.000Z')
  expect(client.getValue('plan', 'DEFAULT')).toBe('newcomer')
  // The same date in a new Date object is the same context.
  await client.setContext({ targetingKey: 'alice', signedUpAt: new Date(Date.UTC(2025, 0, 1)) })
  expect(server.requests.length).toBe(before + 1)
})

test('an invalid context is refused with an error log, not a throw', async () => {
  const logger = createTestLogger()
  const c = createClient({ url: server.url, context: { targetingKey: 'x' }, storage: 'memory', logger })
  await expect(c.setContext({} as never)).resolves.toBeDefined()
  expect(logger.errors[0]).toContain('[holdfast]')
  expect(c.getContext().targetingKey).toBe('x')
  await c.close()
})

test('the same switch asked twice (a provider and the app both call setContext): both calls settle with the new user’s values, not "loading"', async () => {
  server.always(delayed(flags([{ key: 'plan', value: 'bob-plan' }]), 50))
  const first = client.setContext({ targetingKey: 'bob' })
  const second = client.setContext({ targetingKey: 'bob' })
  const [a, b] = await Promise.all([first, second])
  expect(a.state).toBe('ready')
  expect(b.state).toBe('ready')
  expect(client.getValue('plan', '')).toBe('bob-plan')
  expect(server.requests.filter((r) => r.body.context.targetingKey === 'bob')).toHaveLength(1)
})

test('new attributes for the same targetingKey during an outage keep that user’s values (stale), never the defaults', async () => {
  // A page rendered with a bootstrap for dave adds his plan once it knows it, while the flag
  // service is down. Nothing is cached (first visit): his bootstrap values are still his, so the
  // failed attempt for the new attributes must not turn every flag (a kill switch) into the default.
  server.always({ status: 503, raw: '' })
  const bootstrap = { context: { targetingKey: 'dave' }, flags: [{ key: 'kill-switch', value: true }], fetchedAt: Date.now() }
  const c = createClient({ url: server.url, context: { targetingKey: 'dave' }, bootstrap, storage: 'memory', logger: createTestLogger() })
  await c.start()
  const status = await c.setContext({ targetingKey: 'dave', plan: 'pro' })
  expect(server.requests.at(-1)!.body.context).toEqual({ targetingKey: 'dave', plan: 'pro' })
  expect(status.state).toBe('stale')
  expect(c.getDetails('kill-switch', false)).toMatchObject({ value: true, source: 'bootstrap', stale: true })
  // Another user is still another user: nothing of dave's once erin's own attempt has failed.
  expect((await c.setContext({ targetingKey: 'erin' })).state).toBe('error')
  expect(c.getDetails('kill-switch', false)).toMatchObject({ value: false, source: 'default' })
  await c.close()
})
