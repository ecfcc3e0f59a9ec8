// CONTRACT §2.1: a 304 confirms only the snapshot its ETag names. One naming another tag than the
// request's (a server or CDN that rotated its tags) confirms nothing held, but the server is
// healthy: the client asks again once without If-None-Match, never in a loop.
import { expect, test } from 'vitest'
import { flags } from '../support/faultServer'
import { useFaultClients } from '../support/faultClients'

const env = useFaultClients()
const client = env.client

test('a 304 naming another ETag than the one sent: asked again once without If-None-Match, no error', async () => {
  env.server.next(flags([{ key: 'kill', value: false }], '"A"'))
  const c = client()
  await c.start()
  env.server.next({ status: 304, headers: { ETag: '"B"' } }, flags([{ key: 'kill', value: true }], '"B"'))
  const status = await c.refresh()
  expect(env.server.requests.map((r) => r.headers['if-none-match'])).toEqual([undefined, '"A"', undefined])
  expect(status.error).toBeUndefined()
  expect(status.state).toBe('ready')
  expect(c.getGate('kill')).toBe(true)
})

test('a server that always answers 304 with another tag: one re-ask per attempt, then INVALID_RESPONSE', async () => {
  env.server.next(flags([{ key: 'kill', value: false }], '"A"'))
  const c = client()
  await c.start()
  env.server.always({ status: 304, headers: { ETag: '"Z"' } })
  const status = await c.refresh()
  expect(env.server.requests.length).toBe(3)
  expect(status.state).toBe('stale')
  expect(status.error?.code).toBe('INVALID_RESPONSE')
  expect(c.getDetails('kill', true)).toMatchObject({ value: false, stale: true })
})
