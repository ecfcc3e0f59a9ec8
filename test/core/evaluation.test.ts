// Evaluation from memory: types against the default, missing flags, odd keys, no throws.
import { afterEach, expect, test } from 'vitest'
import { createClient, type FlagClient } from '@holdfast/core'
import { createTestLogger } from '../support/clock'

let client: FlagClient
afterEach(() => client?.close())

function withBootstrap(flags: unknown[]) {
  client = createClient({
    url: 'http://127.0.0.1:9',
    context: { targetingKey: 'u' },
    storage: 'memory',
    logger: createTestLogger(),
    bootstrap: { context: { targetingKey: 'u' }, flags: flags as never, fetchedAt: 1 },
  })
  return client
}

test('each getter checks the JSON type against the default', () => {
  const c = withBootstrap([
    { key: 'bool', value: true },
    { key: 'str', value: 'hi' },
    { key: 'num', value: 0 },
    { key: 'obj', value: { a: 1 } },
    { key: 'arr', value: [1, 2] },
  ])
  expect(c.getGate('bool')).toBe(true)
  expect(c.getGate('str')).toBe(false)
  expect(c.getDetails('str', false)).toMatchObject({ value: false, errorCode: 'TYPE_MISMATCH', source: 'bootstrap' })
  expect(c.getConfig('obj')).toEqual({ a: 1 })
  expect(c.getConfig('arr', { fallback: true })).toEqual({ fallback: true })
  expect(c.getDetails('arr', {}).errorCode).toBe('TYPE_MISMATCH')
  expect(c.getValue('num', 5)).toBe(0)
  expect(c.getValue('num', 'x')).toBe('x')
  expect(c.getValue('arr', [] as number[])).toEqual([1, 2])
  expect(c.getValue('obj', null)).toEqual({ a: 1 })
})

test('a missing flag gives the default with FLAG_NOT_FOUND and source default', () => {
  const c = withBootstrap([])
  expect(c.getDetails('nope', 'd')).toEqual({ key: 'nope', value: 'd', source: 'default', errorCode: 'FLAG_NOT_FOUND', stale: false })
  expect(c.getGate('nope', true)).toBe(true)
  expect(c.getConfig('nope')).toEqual({})
})

test('a flag without a value gives the caller default with the server reason', () => {
  const c = withBootstrap([{ key: 'off', reason: 'DISABLED' }, { key: 'nul', value: null, reason: 'DEFAULT' }])
  expect(c.getDetails('off', 'mine')).toMatchObject({ value: 'mine', reason: 'DISABLED', source: 'bootstrap' })
  expect(c.getDetails('nul', 7)).toMatchObject({ value: 7, reason: 'DEFAULT' })
})

test('__proto__, constructor and toString are ordinary keys', () => {
  const c = withBootstrap([{ key: '__proto__', value: true }, { key: 'constructor', value: { x: 1 } }])
  expect(c.getGate('__proto__')).toBe(true)
  expect(c.getConfig('constructor')).toEqual({ x: 1 })
  expect(c.getDetails('toString', 'd')).toMatchObject({ value: 'd', errorCode: 'FLAG_NOT_FOUND' })
  expect(c.getGate('hasOwnProperty')).toBe(false)
})

test('the same inputs give the same details object (stable snapshots for React)', () => {
  const c = withBootstrap([{ key: 'a', value: { n: 1 } }])
  const def = {}
  expect(c.getDetails('a', def)).toBe(c.getDetails('a', def))
})

test('createClient throws only for programmer mistakes', () => {
  expect(() => createClient({ url: '', context: { targetingKey: 'u' } })).toThrow(/url/)
  expect(() => createClient({ url: 'http://x', context: {} as never })).toThrow(/targetingKey/)
})
