// A flag's metadata as the app reads it in `getDetails().metadata`: the entries OFREP allows
// (string, finite number, boolean) kept, any other entry left out alone, an own `__proto__` kept
// as an entry; from a bootstrap, a copy the app can no longer change, each getter read once.
// (The metadata is copied by a spread since 2026-12-08, for its memory: `npm run bench`'s heap
// figure; these pin what that copy must still do.)
import { expect, test } from 'vitest'
import { createFaultServer } from '../support/faultServer'
import { useContractSuite } from '../support/contractClient'

const suite = useContractSuite()

test('from the wire: strings, numbers and booleans kept in order, nested values, arrays and nulls left out alone, an own "__proto__" an entry like any other', async () => {
  const raw = '{"flags":[{"key":"a","value":1,"metadata":{"owner":"growth","nested":{"x":1},"weight":0.5,"list":[1],"nothing":null,"__proto__":"entry","on":false}}]}'
  suite.server = await createFaultServer({ status: 200, raw, headers: { 'content-type': 'application/json' } })
  const { client } = suite.make()
  await client.start()
  const { metadata } = client.getDetails('a', 0)
  expect(Object.keys(metadata!)).toEqual(['owner', 'weight', '__proto__', 'on'])
  expect(Object.getOwnPropertyDescriptor(metadata, '__proto__')?.value).toBe('entry')
  expect(Object.getPrototypeOf(metadata)).toBe(Object.prototype)
  expect(metadata).toMatchObject({ owner: 'growth', weight: 0.5, on: false })
})

test('from a bootstrap: a copy, so the app changing its object later changes nothing held; a getter read once, and the value it gave is the one checked', async () => {
  suite.server = await createFaultServer({ status: 503, raw: '' })
  let reads = 0
  const metadata: Record<string, unknown> = { owner: 'growth' }
  Object.defineProperty(metadata, 'flip', { enumerable: true, get: () => (++reads === 1 ? 'first' : { not: 'a metadata value' }) })
  const { client } = suite.make({ bootstrap: { context: { targetingKey: 'alice' }, flags: [{ key: 'a', value: true, metadata } as never] } })
  metadata.owner = 'changed'
  metadata.added = 'later'
  expect(client.getDetails('a', false).metadata).toEqual({ owner: 'growth', flip: 'first' })
  expect(reads).toBe(1)
})
