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
  const { client } = suite.make({ bootstrap: { context: { targetingKey: 'alice' }, fetchedAt: 0, flags: [{ key: 'a', value: true, metadata } as never] } })
  metadata.owner = 'changed'
  metadata.added = 'later'
  expect(client.getDetails('a', false).metadata).toEqual({ owner: 'growth', flip: 'first' })
  expect(reads).toBe(1)
})

test('a bootstrap value: a deep copy (an entry set to undefined absent, as JSON.stringify has it; an own "__proto__" a key), the app changing its object later changes nothing held; a value JSON cannot carry is not held: the default stands in', async () => {
  suite.server = await createFaultServer({ status: 503, raw: '' })
  const config: Record<string, unknown> = JSON.parse('{"__proto__":{"x":1},"list":[1,{"deep":[true,"s"]}],"gone":null}')
  config.gone = undefined
  const cycle: Record<string, unknown> = {}
  cycle.self = cycle
  const bad: Array<[string, unknown]> = [['nan', { n: Number.NaN }], ['big', [1n]], ['cycle', cycle], ['date', { at: new Date(0) }], ['hole', [1, , 3]]]
  const { client } = suite.make({ bootstrap: { context: { targetingKey: 'alice' }, fetchedAt: 0, flags: [{ key: 'config', value: config }, ...bad.map(([key, value]) => ({ key, value }))] as never } })
  ;((config.list as unknown[])[1] as { deep: unknown[] }).deep.push('added')
  config.later = 1
  const value = client.getValue('config', {}) as Record<string, unknown>
  expect(JSON.stringify(value)).toBe('{"__proto__":{"x":1},"list":[1,{"deep":[true,"s"]}]}')
  expect(Object.getPrototypeOf(value)).toBe(Object.prototype)
  // (Its errorCode says FLAG_NOT_FOUND, the bootstrap holding no value for it: left as it was.)
  for (const [key] of bad) expect(client.getDetails(key, 'default'), key).toMatchObject({ value: 'default', errorCode: 'FLAG_NOT_FOUND' })
})

test('a bootstrap value with Symbol-keyed entries: served as the JSON the app gave, without them (JSON has none), so nothing held is the app\'s own object to change later', async () => {
  suite.server = await createFaultServer({ status: 503, raw: '' })
  const shared = { mutable: 1 }
  const tag = Symbol('app-tag')
  const config = { color: 'red', nested: { limit: 3, [tag]: shared }, [tag]: shared }
  const { client } = suite.make({ bootstrap: { context: { targetingKey: 'alice' }, fetchedAt: 0, flags: [{ key: 'config', value: config }] as never } })
  const value = client.getValue('config', {}) as unknown as { nested: object }
  expect(JSON.stringify(value)).toBe('{"color":"red","nested":{"limit":3}}')
  expect(Object.getOwnPropertySymbols(value)).toEqual([])
  expect(Object.getOwnPropertySymbols(value.nested)).toEqual([])
  expect(Object.isFrozen(value)).toBe(true)
})
