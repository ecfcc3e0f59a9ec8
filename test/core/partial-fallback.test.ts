// CONTRACT §5: once a successful response (a partial one too) is applied for the current context,
// fallback values are no longer used: a flag the answer did not list and the client never held
// evaluates to the caller's default.
import { expect, test } from 'vitest'
import { flags } from '../support/faultServer'
import { useFaultClients } from '../support/faultClients'

const env = useFaultClients()
const client = env.client

test('a partial answer that does not list a flag never held: the caller\'s default, as a successful answer ends the fallback (CONTRACT §5)', async () => {
  env.server.always(flags([{ key: 'x', errorCode: 'GENERAL' }, { key: 'v', value: 1 }]))
  const c = client({ fallback: { context: { targetingKey: 'anyone' }, flags: [{ key: 'fb', value: true }], fetchedAt: 0 } })
  const status = await c.start()
  expect(status.state).toBe('ready')
  expect(c.getDetails('fb', false)).toMatchObject({ value: false, source: 'default', errorCode: 'FLAG_NOT_FOUND' })
})
