// CONTRACT §5: during a user switch the previous user's values stand in, never with a source that
// claims they are the new user's.
import { afterEach, beforeEach, expect, test } from 'vitest'
import { createClient, createMemoryStorage, type FlagClient } from '@holdfast/core'
import { createFaultServer, flags, type FaultServer } from '../support/faultServer'
import { createManualClock, createTestLogger } from '../support/clock'

let server: FaultServer
const clients: FlagClient[] = []
beforeEach(async () => {
  server = await createFaultServer()
})
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await server.close()
})

function client(extra: Record<string, unknown> = {}) {
  const c = createClient({
    url: server.url,
    context: { targetingKey: 'alice' },
    storage: createMemoryStorage(),
    logger: createTestLogger(),
    clock: createManualClock(),
    random: () => 0.5,
    refreshOnFocus: false,
    liveUpdates: false,
    requestTimeoutMs: 1000,
    ...extra,
  } as never)
  clients.push(c)
  return c
}

test('during a user switch, the previous user\'s stand-ins say source fallback and stale', async () => {
  server.next(flags([{ key: 'color', value: 'red', variant: 'r', reason: 'TARGETING_MATCH', metadata: { team: 'a' } }], '"A"'))
  const c = client()
  await c.start()
  let release = () => {}
  server.next({ ...flags([{ key: 'color', value: 'blue' }], '"B"'), after: new Promise<void>((r) => (release = r)) })
  const switched = c.setContext({ targetingKey: 'bob' })
  const during = c.getDetails('color', 'none')
  const status = c.getStatus()
  release()
  await switched
  expect(status).toMatchObject({ state: 'loading' })
  expect(during).toMatchObject({ value: 'red', source: 'fallback', stale: true })
  expect(c.getDetails('color', 'none')).toMatchObject({ value: 'blue', source: 'network' })
})
