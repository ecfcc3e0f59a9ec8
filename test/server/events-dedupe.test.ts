// The de-duplication window against a plain reference model, on generated histories (internal
// module, imported by path). The model is the documented guarantee: an id is a duplicate exactly
// while it is among the last `maxIds` accepted ids and was accepted less than `windowMs` ago.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createDedupeWindow } from '../../packages/server/src/events/dedupeWindow'

const claim = fc.record({ kind: fc.constant('claim' as const), id: fc.integer({ min: 0, max: 12 }) })
const tick = fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 40 }) })
const release = fc.record({ kind: fc.constant('release' as const), id: fc.integer({ min: 0, max: 12 }) })

describe('dedupe window', { timeout: 30_000 }, () => {
  it('claims exactly what the documented guarantee says, over any history of ids and clock steps', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 100 }), fc.array(fc.oneof(claim, tick), { maxLength: 80 }), (maxIds, windowMs, ops) => {
        let now = 0
        const window = createDedupeWindow({ maxIds, windowMs, now: () => now })
        let accepted: Array<{ id: string; at: number }> = []
        for (const o of ops) {
          if (o.kind === 'tick') now += o.ms
          else {
            const id = `e${o.id}`
            const recent = accepted.slice(-maxIds).filter((a) => a.at > now - windowMs)
            const expected = !recent.some((a) => a.id === id)
            expect(window.claim(id)).toBe(expected)
            if (expected) accepted = [...accepted.filter((a) => a.id !== id), { id, at: now }]
          }
        }
      }),
      { numRuns: 2000 },
    )
  })

  // A released claim (its write failed) frees the id at once. It may have pushed an older id out
  // of a full window early: the window then errs towards accepting (at-least-once), never towards
  // calling a new event a duplicate.
  it('with failed writes released: never a false duplicate, and a released id is claimable again', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 100 }), fc.array(fc.oneof(claim, tick, release), { maxLength: 80 }), (maxIds, windowMs, ops) => {
        let now = 0
        const window = createDedupeWindow({ maxIds, windowMs, now: () => now })
        const acceptedAt = new Map<string, number>()
        for (const o of ops) {
          const id = `e${(o as { id?: number }).id}`
          if (o.kind === 'tick') now += o.ms
          else if (o.kind === 'release') {
            if (acceptedAt.has(id)) {
              window.release(id)
              acceptedAt.delete(id)
              expect(window.claim(id)).toBe(true)
              acceptedAt.set(id, now)
            }
          } else if (window.claim(id)) acceptedAt.set(id, now)
          else {
            const at = acceptedAt.get(id)
            expect(at !== undefined && at > now - windowMs).toBe(true)
          }
        }
      }),
      { numRuns: 2000 },
    )
  })
})
