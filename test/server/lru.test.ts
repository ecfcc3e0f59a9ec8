// The bounded LRU under the answer cache and the relay's per-context last known good, against a
// reference model on random operations: never over its bounds (but for the one oversize entry
// 'keep' allows), evicts least recently used first, and its byte count is exact.
import fc from 'fast-check'
import { expect, test } from 'vitest'
import { createLru } from '../../packages/server/src/lru'

const op = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), key: fc.constantFrom('a', 'b', 'c', 'd', 'e'), size: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ kind: fc.constant('get' as const), key: fc.constantFrom('a', 'b', 'c', 'd', 'e') }),
  fc.record({ kind: fc.constant('delete' as const), key: fc.constantFrom('a', 'b', 'c', 'd', 'e') }),
)

test.each(['skip', 'keep'] as const)('bounds, recency and byte count hold on random operations (oversize: %s)', (oversize) => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 10, max: 80 }), (ops, maxEntries, maxBytes) => {
      const lru = createLru<number>({ maxEntries, maxBytes, cost: (_k, size) => size, oversize })
      let model: Array<[string, number]> = [] // least recently used first
      for (const o of ops) {
        const at = model.findIndex(([k]) => k === o.key)
        if (o.kind === 'get') {
          const hit = at >= 0 ? model.splice(at, 1)[0] : undefined
          if (hit) model.push(hit)
          expect(lru.get(o.key)).toBe(hit?.[1])
        } else if (o.kind === 'delete') {
          if (at >= 0) model.splice(at, 1)
          lru.delete(o.key)
        } else {
          lru.set(o.key, o.size)
          if (o.size > maxBytes && oversize === 'skip') continue
          if (at >= 0) model.splice(at, 1)
          model.push([o.key, o.size])
          const total = () => model.reduce((sum, [, s]) => sum + s, 0)
          while (model.length > maxEntries || (total() > maxBytes && model.length > 1)) model = model.slice(1)
        }
        expect(lru.entries()).toEqual(model)
        expect(lru.size()).toEqual({ entries: model.length, bytes: model.reduce((sum, [, s]) => sum + s, 0) })
      }
    }),
    { numRuns: 300 },
  )
})
