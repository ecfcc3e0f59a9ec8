// The declared types as a TypeScript user meets them (checked by `npm run typecheck`, which covers
// test/; the assertions below also run). `getValue('theme', 'light')` is a string flag, not the
// literal type 'light': typed as the literal, `theme === 'dark'` did not compile ("This comparison
// appears to be unintentional"), nor `limit === 20` after `getValue('limit', 10)`. A union the app
// names (`getValue<Theme>(…)`) still narrows; objects and arrays keep their types.
import { afterEach, expect, expectTypeOf, test } from 'vitest'
import { createClient, type FlagClient, type JsonValue } from '@holdfast/core'
import { useValue } from '@holdfast/react'
import { createFaultServer, flags, type FaultServer } from '../support/faultServer'
import { createTestLogger } from '../support/clock'

let server: FaultServer | undefined
const clients: FlagClient[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await server?.close()
})

type Theme = 'light' | 'dark'

test('getValue with a literal default is typed as its JSON type, and compares with other values', async () => {
  server = await createFaultServer(flags([{ key: 'theme', value: 'dark' }, { key: 'limit', value: 20 }, { key: 'beta', value: true }]))
  const client = createClient({ url: server.url, context: { targetingKey: 'u' }, storage: 'memory', logger: createTestLogger() })
  clients.push(client)
  await client.start()

  const theme = client.getValue('theme', 'light')
  expectTypeOf(theme).toEqualTypeOf<string>()
  expect(theme === 'dark').toBe(true)
  const limit = client.getValue('limit', 10)
  expectTypeOf(limit).toEqualTypeOf<number>()
  expect(limit === 20).toBe(true)
  const beta = client.getValue('beta', false)
  expectTypeOf(beta).toEqualTypeOf<boolean>()
  expect(beta === true).toBe(true)

  // The generic form stays: a union the app names narrows the result.
  const named = client.getValue<Theme>('theme', 'light')
  expectTypeOf(named).toEqualTypeOf<Theme>()
  expect(named).toBe('dark')
  expectTypeOf(client.getValue('cfg', { limit: 3 })).toEqualTypeOf<{ limit: number }>()
  expectTypeOf(client.getValue('list', ['a'])).toEqualTypeOf<string[]>()
  expectTypeOf(client.getValue<JsonValue>('any', null)).toEqualTypeOf<JsonValue>()
})

test('useValue with a literal default is typed as its JSON type too', () => {
  // Types only: the component is not rendered here.
  expectTypeOf<ReturnType<typeof useValue<Theme>>>().toEqualTypeOf<Theme>()
  function Checkout() {
    const t = useValue('theme', 'light')
    expectTypeOf(t).toEqualTypeOf<string>()
    const n = useValue('limit', 10)
    expectTypeOf(n).toEqualTypeOf<number>()
    return t === 'dark' || n === 20
  }
  expect(typeof Checkout).toBe('function')
})

test('a default typed as a union the app declared (a config constant, a prop) keeps that union: code that compiled before the overloads still does', () => {
  // Types only. Before: `getValue('theme', defaults.theme)` matched the `string` overload, so
  // `const theme: Theme = …` stopped compiling ("Type 'string' is not assignable to type 'Theme'").
  const defaults: { theme: Theme; limit: 10 | 20; beta: boolean } = { theme: 'light', limit: 10, beta: false }
  const client = createClient({ url: 'http://127.0.0.1:9', context: { targetingKey: 'u' }, storage: 'memory', logger: createTestLogger() })
  clients.push(client)
  const theme: Theme = client.getValue('theme', defaults.theme)
  expectTypeOf(client.getValue('theme', defaults.theme)).toEqualTypeOf<Theme>()
  expectTypeOf(client.getValue('limit', defaults.limit)).toEqualTypeOf<10 | 20>()
  expectTypeOf(client.getValue('beta', defaults.beta)).toEqualTypeOf<boolean>()
  const pick = (fallback: Theme): Theme => client.getValue('theme', fallback)
  function Banner(props: { theme: Theme }) {
    const t: Theme = useValue('theme', props.theme)
    expectTypeOf(useValue('theme', props.theme)).toEqualTypeOf<Theme>()
    return t
  }
  expect([theme, pick('dark'), typeof Banner]).toEqual(['light', 'dark', 'function'])
})
