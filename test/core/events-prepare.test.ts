// What the queue keeps of a logged event, for any input a JavaScript caller could hand over: a
// copy that is plain JSON (so IndexedDB can clone it and a batch can always be serialised), with
// metadata reduced to strings, finite numbers and booleans; or nothing (the event is dropped and
// counted) when it cannot be serialised at all. Never a throw.
import { expect, test } from 'vitest'
import fc from 'fast-check'
import type { HoldfastEvent } from '@holdfast/core'
import { prepareEvent } from '../../packages/core/src/events/prepareEvent'
import { createTestLogger } from '../support/clock'

const anything = fc.anything({ withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withNullPrototype: true, withSparseArray: true })

test('any value and metadata: a plain-JSON copy, or undefined; never a throw, never the caller’s objects', () => {
  fc.assert(
    fc.property(anything, fc.oneof(fc.dictionary(fc.string(), anything), anything), fc.double(), (value, metadata, time) => {
      const event = { id: 'id-1', type: 'custom', name: 'e', time, targetingKey: 'u', value, metadata } as unknown as HoldfastEvent
      const copy = prepareEvent(event, createTestLogger())
      if (copy === undefined) {
        // Only what JSON refuses is refused.
        expect(() => JSON.stringify(value)).toThrow()
        return
      }
      expect(JSON.parse(JSON.stringify(copy))).toEqual(copy)
      expect(Number.isFinite(copy.time)).toBe(true)
      for (const v of Object.values(copy.metadata ?? {})) expect(['string', 'boolean', 'number']).toContain(typeof v)
      for (const v of Object.values(copy.metadata ?? {})) if (typeof v === 'number') expect(Number.isFinite(v)).toBe(true)
      if (copy.metadata !== undefined) expect(copy.metadata).not.toBe(metadata)
      if (typeof value === 'object' && value !== null && copy.value !== undefined) expect(copy.value).not.toBe(value)
    }),
    { numRuns: 1000 },
  )
})

test('metadata with throwing getters, a Proxy or a revoked Proxy drops that event alone, with a warning', () => {
  const logger = createTestLogger()
  const throwing = Object.defineProperty({}, 'plan', { enumerable: true, get: () => { throw new Error('boom') } })
  const revocable = Proxy.revocable({}, {})
  revocable.revoke()
  for (const metadata of [throwing, revocable.proxy]) {
    const event = { id: 'x', type: 'custom', name: 'hostile', time: 1, metadata } as unknown as HoldfastEvent
    expect(prepareEvent(event, logger)).toBeUndefined()
  }
  expect(logger.warnings.filter((m) => m.includes('dropped the event "hostile"'))).toHaveLength(2)
})

test('a metadata key "__proto__" (JSON.parse makes it an own key) is left out with a warning, as any value it cannot keep, not silently', () => {
  const logger = createTestLogger()
  for (const v of ['x', 1, true]) {
    const metadata = JSON.parse(`{"__proto__":${JSON.stringify(v)},"plan":"pro"}`) as Record<string, string>
    const copy = prepareEvent({ id: 'x', type: 'custom', name: 'signup', time: 1, metadata } as HoldfastEvent, logger)
    expect(copy?.metadata).toEqual({ plan: 'pro' })
    expect(Object.getPrototypeOf(copy?.metadata)).toBe(Object.prototype)
  }
  expect(logger.warnings.filter((m) => m.includes('event "signup": metadata "__proto__" left out'))).toHaveLength(3)
})
