// CONTRACT §2.1: a 304 confirms only the snapshot its ETag names. One naming another tag than the
// request's (a server or CDN that rotated its tags) confirms nothing held, but the server is
// healthy: the client asks again once without If-None-Match, never in a loop.
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

test('a 304 naming another ETag than the one sent: asked again once without If-None-Match, no error', async () => {
  server.next(flags([{ key: 'kill', value: false }], '"A"'))
  const c = client()
  await c.start()
  server.next({ status: 304, headers: { ETag: '"B"' } }, flags([{ key: 'kill', value: true }], '"B"'))
  const status = await c.refresh()
  expect(server.requests.map((r) => r.headers['if-none-match'])).toEqual([undefined, '"A"', undefined])
  expect(status.error).toBeUndefined()
  expect(status.state).toBe('ready')
  expect(c.getGate('kill')).toBe(true)
})

test('a server that always answers 304 with another tag: one re-ask per attempt, then INVALID_RESPONSE', async () => {
  server.next(flags([{ key: 'kill', value: false }], '"A"'))
  const c = client()
  await c.start()
  server.always({ status: 304, headers: { ETag: '"Z"' } })
  const status = await c.refresh()
  expect(server.requests.length).toBe(3)
  expect(status.state).toBe('stale')
  expect(status.error?.code).toBe('INVALID_RESPONSE')
  expect(c.getDetails('kill', true)).toMatchObject({ value: false, stale: true })
})
