// The client's delivery drops alone an event the sink would refuse (packages/core/src/events/
// delivery/eventLimits.ts), so the valid events of its batch are not dropped with it by the sink's
// 400. That check is hand-written (bundle size); here, on generated events near and past every
// limit, it refuses exactly what the server's reader (zod schema + shape scan) refuses.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { readEventBatch } from '@holdfast/server'
import { overLimits } from '../../packages/core/src/events/delivery/eventLimits'
import { isStoredEvent } from '../../packages/core/src/events/delivery/storeReader'
import type { HoldfastEvent } from '../../packages/core/src/types'

const nested = (levels: number, leaf: unknown): unknown => {
  let value = leaf
  for (let i = 0; i < levels; i++) value = i % 2 ? [value] : { k: value }
  return value
}
// Each field is mostly valid, so that events refused for one reason alone come up often.
const mostly = <T, U>(valid: fc.Arbitrary<T>, edge: fc.Arbitrary<U>) => fc.oneof({ weight: 5, arbitrary: valid }, { weight: 1, arbitrary: edge })
const nearLimit = (limit: number) => mostly(fc.string({ maxLength: 12 }), fc.string({ minLength: limit - 2, maxLength: limit + 2 }))
const optionalText = mostly(fc.oneof(fc.string({ maxLength: 12 }), fc.constant(null)), fc.oneof(fc.string({ minLength: 1022, maxLength: 1026 }), fc.integer(), fc.boolean()))
const jsonLeaf = fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean(), fc.constant(null))
const metadata = mostly(
  fc.dictionary(fc.string({ maxLength: 6 }), jsonLeaf, { maxKeys: 8 }),
  fc.oneof(
    fc.integer({ min: 95, max: 105 }).map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]))),
    // As JSON, `{"blob":"…"}` is the string's length + 11: around the 16 KiB cap.
    fc.constantFrom(16_383, 16_384, 16_385, 16_386, 16_389).map((json) => ({ blob: 'b'.repeat(json - 11) })),
    fc.integer({ min: 1, max: 6 }).map((levels) => nested(levels, 1)),
    fc.dictionary(fc.string({ maxLength: 4 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 }),
    fc.constant(JSON.parse('{"__proto__": {"plan": "pro"}}')),
    fc.array(jsonLeaf, { maxLength: 3 }),
    fc.constant(null),
    fc.string({ maxLength: 5 }),
  ),
)
const value = mostly(
  fc.jsonValue({ maxDepth: 4 }),
  fc.oneof(fc.integer({ min: 60, max: 75 }).map((levels) => nested(levels, 'bottom')), fc.constant(JSON.parse('{"a": {"__proto__": 1}}'))),
)
const event = fc.record(
  {
    id: mostly(fc.uuid(), fc.oneof(fc.constant(''), fc.string({ minLength: 126, maxLength: 130 }))),
    type: fc.constantFrom('exposure', 'custom'),
    name: nearLimit(1024),
    time: fc.integer({ min: 0, max: 4_102_444_800_000 }),
    targetingKey: optionalText,
    flagKey: optionalText,
    variant: optionalText,
    reason: optionalText,
    value,
    metadata,
    source: mostly(fc.constantFrom('network', 'cache'), fc.integer({ min: 66, max: 72 }).map((levels) => nested(levels, 0))),
  },
  { requiredKeys: ['id', 'type', 'name', 'time'] },
)

describe("the client's sink-limit check vs the server's events reader", () => {
  it('refuses exactly the events the server would answer 400 for', () => {
    fc.assert(
      fc.property(event, (doc) => {
        // What delivery sees is what an event store gave back: plain JSON.
        const stored = JSON.parse(JSON.stringify(doc)) as HoldfastEvent
        if (!isStoredEvent(stored)) return
        const server = readEventBatch(JSON.parse(JSON.stringify({ events: [stored] })))
        expect(!overLimits(stored)).toBe(server.ok)
      }),
      { numRuns: 3000 },
    )
  })

  it('finds each kind of refusal on its own', () => {
    const base = { id: 'e-1', type: 'custom', name: 'ok', time: 1 } as HoldfastEvent
    const cases: Array<Partial<HoldfastEvent> & Record<string, unknown>> = [
      { name: 'n'.repeat(1025) },
      { id: '' },
      { id: 'i'.repeat(129) },
      { variant: 'v'.repeat(1025) },
      { targetingKey: 7 as never },
      { metadata: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`k${i}`, i])) },
      { metadata: { blob: 'b'.repeat(16_384) } },
      { metadata: { a: nested(4, 1) } as never },
      { value: nested(70, 0) as never },
      { value: JSON.parse('{"__proto__": 1}') },
    ]
    for (const extra of cases) {
      const doc = { ...base, ...extra } as HoldfastEvent
      expect(overLimits(doc), JSON.stringify(extra).slice(0, 60)).toBe(true)
      expect(readEventBatch(JSON.parse(JSON.stringify({ events: [doc] }))).ok).toBe(false)
    }
    expect(overLimits({ ...base, value: nested(69, 0) as never, metadata: { a: nested(3, 1) } as never, name: 'n'.repeat(1024) })).toBe(false)
  })
})
