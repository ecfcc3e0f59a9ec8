// The one scheduler, seen through a client against a real failing server: Retry-After can neither
// loop nor park the client, focus/online flapping never bypasses backoff, every timer is on the
// injected clock, a fetch that ignores aborts still times out, and a throwing logger breaks nothing.
import { afterEach, beforeEach, expect, test } from 'vitest'
import { createClient, createScheduler, HoldfastError, type FlagClient } from '@holdfast/core'
import { createFaultServer, flags, type FaultServer } from '../support/faultServer'
import { createManualClock, createTestLogger, uniqueStorageName, type ManualClock } from '../support/clock'
import { fakeEnvironment } from '../support/environment'

let server: FaultServer
let client: FlagClient | undefined
let clock: ManualClock
beforeEach(async () => {
  server = await createFaultServer(flags([{ key: 'a', value: true }]))
  clock = createManualClock()
})
afterEach(async () => {
  await client?.close()
  client = undefined
  await server.close()
})

const settle = () => new Promise((r) => setTimeout(r, 25))

function make(options: Partial<Parameters<typeof createClient>[0]> = {}) {
  client = createClient({ url: server.url, context: { targetingKey: 'u' }, storage: 'memory', storageName: uniqueStorageName('sched'), logger: createTestLogger(), clock, random: () => 0.5, requestTimeoutMs: 300, ...options })
  return client
}

test('Retry-After: 0 from a failing server is raised to the base delay: at most 5 requests in 3 s', async () => {
  server.always({ status: 503, raw: '', headers: { 'Retry-After': '0' } })
  make()
  await client!.start()
  for (let t = 0; t < 3000; t += 50) {
    clock.advance(50)
    await settle()
  }
  expect(server.requests.length).toBeGreaterThanOrEqual(2)
  expect(server.requests.length).toBeLessThanOrEqual(5)
})

test("an HTTP-date Retry-After is read against the server's Date header, not a client clock hours off", async () => {
  clock.advance(3 * 60 * 60 * 1000) // the client's clock runs three hours ahead; no timers yet
  const serverNow = Math.floor(Date.now() / 1000) * 1000
  server.always({
    status: 503,
    raw: '',
    headers: { Date: new Date(serverNow).toUTCString(), 'Retry-After': new Date(serverNow + 30_000).toUTCString() },
  })
  make()
  await client!.start()
  // Read against the client's clock this date is hours in the past ("now"); against Date it is 30 s.
  expect(clock.pending()).toEqual([30_000])
})

test('flapping online/offline and focus never bypass backoff', async () => {
  const env = fakeEnvironment()
  server.always({ status: 503, raw: '' })
  make({ environment: env })
  await client!.start()
  const [delay] = clock.pending()
  expect(delay).toBe(750)
  for (let i = 0; i < 10; i++) {
    env.fire('offline')
    env.fire('online')
    env.fire('focus')
  }
  clock.advance(delay - 200) // the manual clock also moves with real time: stay well short
  await settle()
  expect(server.requests).toHaveLength(1)
  // The retry falls due while offline: it waits for `online`, then goes once.
  env.fire('offline')
  clock.advance(200)
  await settle()
  expect(server.requests).toHaveLength(1)
  server.always(flags([{ key: 'a', value: false }]))
  env.fire('online')
  env.fire('online')
  await server.waitForRequests(2)
  await settle()
  expect(server.requests).toHaveLength(2) // two `online` events, one request
  expect(client!.getGate('a', true)).toBe(false)
})

test('close() removes the listeners of an injected environment', async () => {
  const env = fakeEnvironment()
  make({ environment: env })
  expect(env.listeners()).toBe(0) // nothing at creation
  await client!.start()
  expect(env.listeners()).toBe(1)
  await client!.close()
  expect(env.listeners()).toBe(0)
})

test('a request times out on the injected clock even when a custom fetch ignores the AbortSignal', async () => {
  const neverSettles: typeof fetch = () => new Promise<Response>(() => {})
  make({ fetch: neverSettles })
  const started = client!.start()
  await settle()
  clock.advance(300)
  const status = await started
  expect(status).toMatchObject({ state: 'error', error: { code: 'TIMEOUT' } })
})

test('a logger whose methods throw never breaks the client', async () => {
  const throwing = {
    warn: () => {
      throw new Error('logger down')
    },
    error: () => {
      throw new Error('logger down')
    },
  }
  server.always({ status: 503, raw: '' })
  make({ logger: throwing, requestTimeoutMs: Number.NaN, refreshIntervalMs: -1 })
  const status = await client!.start()
  expect(status.error?.code).toBe('HTTP')
  expect(client!.getGate('a', true)).toBe(true)
})

test('every message of the one logger carries the [holdfast] prefix', async () => {
  const logger = createTestLogger()
  server.always({ status: 503, raw: '' })
  make({ logger, requestTimeoutMs: 0 })
  await client!.start()
  expect(logger.warnings.length).toBeGreaterThan(0)
  for (const w of logger.warnings) expect(w.startsWith('[holdfast]')).toBe(true)
})

test('the scheduler on its own: explicit calls skip backoff and offline but not Retry-After', () => {
  const env = fakeEnvironment()
  const runs: string[] = []
  const scheduler = createScheduler({ clock, environment: env, random: () => 1, run: (t) => runs.push(t) })
  scheduler.start()
  expect(scheduler.failed(new HoldfastError('HTTP', '503', { httpStatus: 503 }))).toBe(1000)
  expect(scheduler.allows('explicit')).toBe(true)
  expect(scheduler.allows('focus')).toBe(false)
  env.isOnline = false
  clock.advance(1000)
  expect(runs).toEqual([]) // due, but offline: waits for `online`
  env.fire('online')
  expect(runs).toEqual(['online'])
  scheduler.began()
  expect(scheduler.failed(new HoldfastError('HTTP', '429', { httpStatus: 429, retryAfterMs: 0 }))).toBe(2000)
  expect(scheduler.allows('explicit')).toBe(false)
  clock.advance(2000)
  expect(runs).toEqual(['online', 'retry'])
  scheduler.stop()
  expect(clock.pending()).toEqual([])
})
