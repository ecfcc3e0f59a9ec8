// The client's hand-written stored-event check and the server's zod event schema, on generated
// documents. The client's check lives in packages/core/src/schemas.ts (`isStoredEvent`; imported
// by relative path because it is internal — if it moves to packages/core/src/protocol/, move this
// import). Where they overlap (id, type, name, time) they agree, except where the server is
// deliberately stricter, listed here exactly:
//   1. `id` must be 1..128 characters (the client accepts any string; it only makes UUIDs);
//   2. `name` (and the optional strings) at most 1,024 characters;
//   3. optional fields are type-checked (the client passes them through unread: "the receiver
//      validates its own input"), and metadata is capped (depth 4, 100 keys, 16 KiB);
//   4. a `__proto__` key anywhere in the body refuses the batch (readEventBatch): the client lets
//      such a metadata key or flag value through (follow-up for the client: leave it out at
//      logEvent with a warning, as it does for non-primitive metadata values);
//   5. fields the schema does not name must be JSON values (a number past a double, `1e400`, read
//      as Infinity, is refused there too); the client never sends one (it writes with
//      JSON.stringify, and prepareEvent turns a non-finite value into null and leaves such a
//      metadata value out).
// The server is never looser: whatever zod accepts, the client's check accepts too.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { eventSchema, readEventBatch } from '@holdfast/server'
import { isStoredEvent } from '../../packages/core/src/events/delivery/storeReader'

const anyValue = fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constant(undefined), fc.array(fc.integer(), { maxLength: 2 }))
const idish = fc.oneof(fc.uuid(), fc.string({ maxLength: 140 }), fc.constant(''), fc.string({ minLength: 129, maxLength: 140 }), anyValue)
const typeish = fc.oneof(fc.constantFrom('exposure', 'custom'), fc.constantFrom('Exposure', 'click', ''), anyValue)
const nameish = fc.oneof(fc.string({ maxLength: 30 }), fc.string({ minLength: 1020, maxLength: 1030 }), anyValue)
const timeish = fc.oneof(fc.integer(), fc.double(), fc.constantFrom(Number.NaN, Infinity, -Infinity, -0), fc.string({ maxLength: 13 }), anyValue)
const flatMetadata = fc.dictionary(fc.string({ maxLength: 12 }), fc.oneof(fc.string({ maxLength: 40 }), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean()), { maxKeys: 20 })
// Optional fields the way the client's logEvent and exposures produce them.
const wellTypedOptionals = fc.record(
  {
    targetingKey: fc.string({ maxLength: 40 }),
    flagKey: fc.string({ maxLength: 40 }),
    value: fc.jsonValue({ maxDepth: 4 }),
    variant: fc.string({ maxLength: 20 }),
    reason: fc.string({ maxLength: 20 }),
    source: fc.constantFrom('network', 'cache', 'bootstrap', 'fallback', 'default'),
    metadata: flatMetadata,
  },
  { requiredKeys: [] },
)
const overlapping = fc.record({ id: idish, type: typeish, name: nameish, time: timeish }, { requiredKeys: [] })

describe('client event check vs zod event schema', { timeout: 30_000 }, () => {
  it('agree on id, type, name and time, except the server caps lengths and refuses an empty id', () => {
    fc.assert(
      fc.property(overlapping, wellTypedOptionals, (required, optionals) => {
        const doc = { ...optionals, ...required }
        const client = isStoredEvent(doc)
        const server = eventSchema.safeParse(doc).success
        const withinServerCaps = typeof doc.id === 'string' && doc.id.length >= 1 && doc.id.length <= 128 && typeof doc.name === 'string' && doc.name.length <= 1024
        expect(server).toBe(client && withinServerCaps)
      }),
      { numRuns: 2000 },
    )
  })

  it('the server is never looser: anything zod accepts, the client accepts', () => {
    const anything = fc.oneof(fc.anything(), fc.record({ id: idish, type: typeish, name: nameish, time: timeish, metadata: fc.anything(), value: fc.anything(), variant: anyValue }, { requiredKeys: [] }))
    fc.assert(
      fc.property(anything, (doc) => {
        if (eventSchema.safeParse(doc).success) expect(isStoredEvent(doc)).toBe(true)
      }),
      { numRuns: 2000 },
    )
  })

  it('every event the client sends is accepted whole by the server', () => {
    const clientEvent = fc.record({ id: fc.uuid(), type: fc.constantFrom('exposure', 'custom'), name: fc.string({ maxLength: 60 }), time: fc.integer({ min: 0, max: 4_102_444_800_000 }) })
    fc.assert(
      fc.property(fc.array(fc.tuple(clientEvent, wellTypedOptionals), { maxLength: 20 }), (pairs) => {
        const events = pairs.map(([required, optionals]) => ({ ...optionals, ...required }))
        // Through JSON, as on the wire (it drops undefined and turns -0 into 0).
        const text = JSON.stringify({ events })
        const wire = JSON.parse(text)
        if (text.includes('"__proto__":')) expect(readEventBatch(wire)).toMatchObject({ ok: false, error: expect.stringContaining('__proto__') })
        else expect(readEventBatch(wire)).toEqual({ ok: true, events: wire.events })
      }),
      { numRuns: 500 },
    )
  })

  it('the batch reader never throws, whatever JSON it is given', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.record({ events: fc.array(fc.jsonValue(), { maxLength: 5 }) })), (doc) => {
        const result = readEventBatch(doc)
        expect(typeof result.ok).toBe('boolean')
      }),
      { numRuns: 1000 },
    )
  })
})
