// CONTRACT §5: during a user switch the previous user's values stand in, never with a source that
// claims they are the new user's.
import { expect, test } from 'vitest'
import { flags } from '../support/faultServer'
import { useFaultClients } from '../support/faultClients'

const env = useFaultClients()
const client = env.client

test('during a user switch, the previous user\'s stand-ins say source fallback and stale', async () => {
  env.server.next(flags([{ key: 'color', value: 'red', variant: 'r', reason: 'TARGETING_MATCH', metadata: { team: 'a' } }], '"A"'))
  const c = client()
  await c.start()
  let release = () => {}
  env.server.next({ ...flags([{ key: 'color', value: 'blue' }], '"B"'), after: new Promise<void>((r) => (release = r)) })
  const switched = c.setContext({ targetingKey: 'bob' })
  const during = c.getDetails('color', 'none')
  const status = c.getStatus()
  release()
  await switched
  expect(status).toMatchObject({ state: 'loading' })
  expect(during).toMatchObject({ value: 'red', source: 'fallback', stale: true })
  expect(c.getDetails('color', 'none')).toMatchObject({ value: 'blue', source: 'network' })
})
