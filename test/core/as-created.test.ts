// @vitest-environment jsdom
// The creation-time view (what a hydrating render reads: `asCreated`) is asked for only by `true`.
// `getStatus` and `getEventStats` are handed around point-free (`start().then(client.getStatus)`,
// `useSyncExternalStore(subscribe, client.getStatus)`): whatever the caller passes as a first
// argument must not switch them to the values of an hour ago.
import { afterEach, expect, test } from 'vitest'
import { createClient, type FlagClient } from '@holdfast/core'
import { createFaultServer, flags, type FaultServer } from '../support/faultServer'
import { createTestLogger, uniqueStorageName } from '../support/clock'

let server: FaultServer
let client: FlagClient
afterEach(async () => {
  await client?.close()
  await server?.close()
})

test('getStatus and getEventStats passed point-free read what is held now, whatever argument they get', async () => {
  server = await createFaultServer(flags([{ key: 'kill', value: true, variant: 'on' }], '"srv"'))
  client = createClient({ url: server.url, context: { targetingKey: 'alice' }, storage: 'memory', storageName: uniqueStorageName('as-created'), logger: createTestLogger() })
  expect(client.getStatus().state).toBe('loading')
  // Before: start() resolves with a Status, truthy, read as `asCreated`: the status at creation, 'loading'.
  const status = await client.start().then(client.getStatus)
  expect(status).toBe(client.getStatus())
  expect(status.state).toBe('ready')
  expect(['x', 1, {}].map(client.getStatus)).toEqual([status, status, status])
  expect(client.getEventStats('x')).toBe(client.getEventStats())
  // Only `true` asks for the creation-time view.
  expect(client.getStatus(true).state).toBe('loading')
  expect(client.getDetails('kill', false, { asCreated: 1 as never }).value).toBe(true)
  expect(client.getDetails('kill', false, { asCreated: true }).value).toBe(false)
})
