// CONTRACT §4: an identical re-confirmation is no change. A partial answer's FLAG_NOT_FOUND keys are
// a set: the same keys in another order wake no listener.
import { afterEach, beforeEach, expect, test, vi } from 'vitest'
import { flags } from '../support/faultServer'
import { useFaultClients } from '../support/faultClients'

const env = useFaultClients()
const client = env.client
// Date alone held still: each success moves lastSuccessAt (a real change of status) otherwise.
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] })
})
afterEach(() => {
  vi.useRealTimers()
})

test('partial answers with the same FLAG_NOT_FOUND flags in another order wake no listener; a real change does', async () => {
  const fail = { key: "x", errorCode: "GENERAL" }
  env.server.next(
    flags([{ key: 'a', errorCode: 'FLAG_NOT_FOUND' }, { key: 'b', errorCode: 'FLAG_NOT_FOUND' }, fail, { key: 'v', value: 1 }]),
    flags([{ key: 'b', errorCode: 'FLAG_NOT_FOUND' }, { key: 'a', errorCode: 'FLAG_NOT_FOUND' }, fail, { key: 'v', value: 1 }]),
    flags([{ key: 'b', errorCode: 'FLAG_NOT_FOUND' }, fail, { key: 'v', value: 1 }]),
  )
  const c = client()
  await c.start()
  let calls = 0
  c.subscribe(() => calls++)
  await c.refresh()
  expect(calls).toBe(0)
  await c.refresh()
  expect(calls).toBe(1)
  expect(c.getDetails('a', 0)).toMatchObject({ value: 0, source: 'default', stale: true })
})
