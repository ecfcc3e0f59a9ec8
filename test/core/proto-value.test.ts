// A flag value may hold a `__proto__` key: JSON.parse makes it an ordinary own key, and that is
// what the server sent. Every copy the client makes (bootstrap, fallback, a value read back from
// IndexedDB) must keep it as that key; assigned with `out[key] = …` it would set the copy's
// prototype instead, and the app would read another value than the server's (`Object.keys`
// without it, its members inherited).
import { afterEach, expect, test } from 'vitest'
import { createClient, type FlagClient } from '@holdfast/core'
import { createTestLogger, uniqueStorageName } from '../support/clock'

const VALUE = '{"__proto__":{"polluted":true},"a":1}'
const clients: FlagClient[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
})

function expectServed(value: unknown) {
  const v = value as Record<string, unknown>
  expect(Object.keys(v)).toEqual(['__proto__', 'a'])
  expect(Object.getPrototypeOf(v)).toBe(Object.prototype)
  expect(v.polluted).toBeUndefined()
  expect(Object.getOwnPropertyDescriptor(v, '__proto__')?.value).toEqual({ polluted: true })
  expect(JSON.stringify(v)).toBe(VALUE)
}

test('a bootstrap or fallback value with a __proto__ key is served with that key, as parsed', () => {
  for (const option of ['bootstrap', 'fallback'] as const) {
    const snapshot = JSON.parse(`{"context":{"targetingKey":"u1"},"fetchedAt":1,"flags":[{"key":"cfg","value":${VALUE}}]}`)
    const client = createClient({ url: 'http://flags.invalid', context: { targetingKey: 'u1' }, storage: 'memory', logger: createTestLogger(), [option]: snapshot })
    clients.push(client)
    expectServed(client.getConfig('cfg', {}))
  }
})

test('a network value with a __proto__ key is the same value when read back from the cache', async () => {
  const storageName = uniqueStorageName('proto-value')
  let up = true
  const fetchFlags: typeof fetch = async () =>
    up ? new Response(`{"flags":[{"key":"cfg","value":${VALUE},"reason":"STATIC"}]}`, { status: 200, headers: { 'content-type': 'application/json' } }) : Promise.reject(new TypeError('down'))
  const first = createClient({ url: 'http://flags.invalid', context: { targetingKey: 'u1' }, storageName, logger: createTestLogger(), fetch: fetchFlags })
  clients.push(first)
  await first.start()
  expectServed(first.getConfig('cfg', {}))
  await first.close()
  up = false
  const second = createClient({ url: 'http://flags.invalid', context: { targetingKey: 'u1' }, storageName, logger: createTestLogger(), fetch: fetchFlags })
  clients.push(second)
  await second.start()
  expect(second.getDetails('cfg', {}).source).toBe('cache')
  expectServed(second.getConfig('cfg', {}))
})
