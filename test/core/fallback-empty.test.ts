// CONTRACT §4 with §5: "an outage that answers {} or [] must never look like 'every kill switch is
// off'". A first visit (nothing cached) shows the build-time `fallback`; a flag server that answers
// `{"flags": []}` (an emptied environment, a broken deploy) must not replace those values with the
// caller's defaults and call that `ready`.
import { afterEach, expect, test } from 'vitest'
import { createClient, type Bootstrap, type FlagClient } from '@holdfast/core'
import { createFaultServer, flags, type FaultServer } from '../support/faultServer'
import { createManualClock, createTestLogger, uniqueStorageName } from '../support/clock'

let server: FaultServer | undefined
const clients: FlagClient[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await server?.close()
})

const fallback: Bootstrap = { context: { targetingKey: 'anyone' }, flags: [{ key: 'payments-kill-switch', value: true }], fetchedAt: 1 }

function make(options: Partial<Parameters<typeof createClient>[0]> = {}) {
  const client = createClient({
    url: server!.url,
    context: { targetingKey: 'first-visit' },
    fallback,
    storageName: uniqueStorageName('fallback-empty'),
    logger: createTestLogger(),
    clock: createManualClock(),
    random: () => 0.5,
    ...options,
  })
  clients.push(client)
  return client
}

test('an empty answer on a first visit keeps the fallback values: EMPTY_RESPONSE, retried, never `ready` with every flag at its default', async () => {
  server = await createFaultServer(flags([]))
  const client = make()
  const status = await client.start()
  // The kill switch stays engaged (before: it fell to the caller's default, state `ready`).
  expect(client.getGate('payments-kill-switch', false)).toBe(true)
  expect(client.getDetails('payments-kill-switch', false)).toMatchObject({ source: 'fallback', stale: true })
  // Fallback values alone are no values of this user's: a failed attempt with only them is `error`.
  expect(status).toMatchObject({ state: 'error', source: 'fallback', error: { code: 'EMPTY_RESPONSE' } })
  expect(status.lastSuccessAt).toBeUndefined()

  // Transient, like any EMPTY_RESPONSE: the retry takes the server's real answer once it has one.
  server.always(flags([{ key: 'payments-kill-switch', value: false }]))
  expect(await client.refresh()).toMatchObject({ state: 'ready', source: 'network' })
  expect(client.getDetails('payments-kill-switch', true)).toMatchObject({ value: false, source: 'network', stale: false })
})

test('the same after a switch to a user with nothing cached', async () => {
  server = await createFaultServer(flags([{ key: 'payments-kill-switch', value: false }]))
  const client = make({ context: { targetingKey: 'alice' } })
  await client.start()
  server.always(flags([]))
  const status = await client.setContext({ targetingKey: 'bob' })
  expect(client.getGate('payments-kill-switch', false)).toBe(true)
  expect(status).toMatchObject({ state: 'error', error: { code: 'EMPTY_RESPONSE' } })
})

test('acceptEmptyResponse still lets an empty answer replace the fallback', async () => {
  server = await createFaultServer(flags([]))
  const client = make({ acceptEmptyResponse: true })
  expect(await client.start()).toMatchObject({ state: 'ready', source: 'network' })
  expect(client.getDetails('payments-kill-switch', false)).toMatchObject({ value: false, source: 'default', errorCode: 'FLAG_NOT_FOUND' })
})
