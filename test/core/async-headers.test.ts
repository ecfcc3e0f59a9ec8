// A `headers` function that returns a promise (an async token getter: Auth0, Firebase, Cognito).
// Before, the promise was spread into the headers as `{}`: every request went out without the
// token, silently, and a server with a key answered 401 to flags, events and the stream alike.
import { afterEach, expect, test } from 'vitest'
import { createClient, type ClientOptions, type FlagClient } from '@holdfast/core'
import { createFlagServer, silentLogger } from '@holdfast/server'
import { createFaultServer, flags, type FaultServer } from '../support/faultServer'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'
import { pollUntil as waitFor } from '../support/streamingOfrep'

const cleanup: Array<() => Promise<unknown> | unknown> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

function make(options: Partial<ClientOptions> & { url: string }): FlagClient {
  const client = createClient({ context: { targetingKey: 'alice' }, storage: 'memory', storageName: uniqueStorageName('async-headers'), logger: createTestLogger(), ...options })
  cleanup.push(() => client.close())
  return client
}

test('an async token getter is awaited per request: flags, events and the event stream carry the token', async () => {
  const server = await createFlagServer({
    flags: { flags: { kill: { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: 'on' } } },
    apiKey: 'secret',
    port: 0,
    logger: silentLogger,
    maxEventLoopDelayMs: 0,
  })
  cleanup.push(() => server.close())
  let asked = 0
  const client = make({
    url: server.url,
    headers: async () => {
      asked++
      await new Promise((resolve) => setTimeout(resolve, 5))
      return { Authorization: 'Bearer secret' }
    },
    events: { url: `${server.url}/holdfast/v1/events` },
    liveUpdates: true,
  })
  const status = await client.start()
  expect(status).toMatchObject({ state: 'ready', source: 'network' })
  expect(client.getGate('kill')).toBe(true)
  client.logEvent('checkout')
  await client.flush()
  // The exposure of `kill` and the custom event.
  expect(client.getEventStats()).toMatchObject({ queued: 0, sent: 2 })
  expect(server.handler.events().map((e) => e.name).sort()).toEqual(['checkout', 'kill'])
  await waitFor(() => server.handler.stream!.connections() === 1, 5000, 'the stream')
  expect(asked).toBeGreaterThanOrEqual(3)
})

test('a token promise that never settles times the request out (start() settles), and a rejected one is a NETWORK error tried again', async () => {
  const upstream: FaultServer = await createFaultServer(flags([{ key: 'kill', value: true }], '"v1"'))
  cleanup.push(() => upstream.close())
  const clock = createManualClock()
  let mode: 'hang' | 'reject' | 'ok' = 'hang'
  const client = make({
    url: upstream.url,
    clock,
    requestTimeoutMs: 300,
    headers: () => (mode === 'hang' ? new Promise<Record<string, string>>(() => {}) : mode === 'reject' ? Promise.reject(new Error('login required')) : Promise.resolve({ 'X-Token': 't' })),
  })
  const started = client.start()
  // Nothing reaches the server while the token is awaited; the timeout runs on the injected clock.
  await waitFor(() => clock.pending().includes(300), 5000, 'the request timer')
  clock.advance(300)
  expect(await started).toMatchObject({ state: 'error', error: { code: 'TIMEOUT' } })
  expect(upstream.requests).toHaveLength(0)

  mode = 'reject'
  expect(await client.refresh()).toMatchObject({ state: 'error', error: { code: 'NETWORK', message: 'the headers option threw: login required' } })
  expect(upstream.requests).toHaveLength(0)

  mode = 'ok'
  expect(await client.refresh()).toMatchObject({ state: 'ready', source: 'network' })
  expect(upstream.requests.at(-1)!.headers['x-token']).toBe('t')
})
