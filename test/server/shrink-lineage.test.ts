// --flags-url --redis: the lineage the leader publishes with each version (flags/lineage.ts), and
// how a follower judges the store's copy by it. Pure, tested without Redis; the
// redis-shrink-lineage tests run the fleet cases against a real redis-server.
// Internal to the server package (urlSource.ts uses it).
import { describe, expect, it } from 'vitest'
import { checkLineage, extendLineage, MAX_LINEAGE_STEPS, readLineage, type LineageStep } from '../../packages/server/src/flags/lineage'

const held = (version: string, flagCount: number) => ({ version, flagCount })

describe('extendLineage', () => {
  it('adds the step from what was served, marks an operator\'s override, keeps the last 16 steps', () => {
    let lineage: LineageStep[] = []
    lineage = extendLineage(lineage, held('a', 10), 4, false)
    lineage = extendLineage(lineage, held('b', 6), 5, true)
    expect(lineage).toEqual([{ h: 'a', n: 10, d: 4 }, { h: 'b', n: 6, d: 5, f: true }])
    for (let i = 0; i < 40; i++) lineage = extendLineage(lineage, held(`v${i}`, 10), 0, false)
    expect(lineage).toHaveLength(MAX_LINEAGE_STEPS)
    expect(lineage.at(-1)).toEqual({ h: 'v39', n: 10, d: 0 })
  })
})

describe('readLineage: the store\'s text is input like any other', () => {
  it('reads what a relay writes', () => {
    const lineage = [{ h: 'a', n: 10, d: 4 }, { h: 'b', n: 6, d: 2, f: true }]
    expect(readLineage(JSON.stringify(lineage))).toEqual(lineage)
  })

  const hostile: Array<[string, string | undefined]> = [
    ['none (an older relay)', undefined],
    ['empty', ''],
    ['not JSON', '[{"h":"a","n":NaN,"d":0}]'],
    ['not a list', '{"h":"a","n":10,"d":0}'],
    ['a negative count', '[{"h":"a","n":-10,"d":0}]'],
    ['a count past any flag set', '[{"h":"a","n":1e300,"d":0}]'],
    ['a fractional count', '[{"h":"a","n":2.5,"d":0}]'],
    ['a count as a string', '[{"h":"a","n":"10","d":0}]'],
    ['more dropped than held', '[{"h":"a","n":4,"d":5}]'],
    ['a zero count', '[{"h":"a","n":0,"d":0}]'],
    ['a forced mark that is not true', '[{"h":"a","n":10,"d":9,"f":"yes"}]'],
    ['more steps than a relay keeps', JSON.stringify(Array.from({ length: MAX_LINEAGE_STEPS + 1 }, (_, i) => ({ h: `v${i}`, n: 10, d: 0 })))],
    ['an unbounded list (a megabyte)', JSON.stringify(Array.from({ length: 40_000 }, (_, i) => ({ h: `v${i}`, n: 10, d: 0 })))],
    ['a version hash longer than any', JSON.stringify([{ h: 'x'.repeat(65), n: 10, d: 0 }])],
  ]
  for (const [what, text] of hostile) {
    it(`${what}: no lineage (the copy is judged as before lineages)`, () => {
      expect(readLineage(text)).toBeUndefined()
      expect(checkLineage(readLineage(text), held('a', 10), 50)).toMatchObject({ ok: false })
    })
  }
})

describe('checkLineage: every step from what the follower serves, by its own --max-shrink', () => {
  // a(10) → b(6) → c(4): 40%, then 33%.
  const steps: LineageStep[] = [{ h: 'a', n: 10, d: 4 }, { h: 'b', n: 6, d: 2 }]

  it('vouches when the held version is in the lineage and every step since is within the rule', () => {
    expect(checkLineage(steps, held('a', 10), 50)).toEqual({ ok: true, steps: 2 })
    expect(checkLineage(steps, held('b', 6), 50)).toEqual({ ok: true, steps: 1 })
  })

  it('a stricter rule refuses a step it would refuse, and says which', () => {
    // …and says the copy descends from what is served (the fleet's history, not junk to write over).
    expect(checkLineage(steps, held('a', 10), 35)).toMatchObject({ ok: false, descends: true, message: expect.stringMatching(/from version a\) drops 4 of 10 flags \(40% > --max-shrink 35%/) })
    // From b only the second step (33%) is left: within 35%.
    expect(checkLineage(steps, held('b', 6), 35)).toMatchObject({ ok: true })
  })

  it('a held version not in the lineage (too old, another history) or with another flag count is refused', () => {
    expect(checkLineage(steps, held('z', 10), 50)).toEqual({ ok: false, message: expect.stringMatching(/does not reach back/) })
    expect(checkLineage(steps, held('a', 9), 50)).toMatchObject({ ok: false, message: expect.stringMatching(/does not reach back/) })
    expect(checkLineage([], held('a', 10), 50)).toMatchObject({ ok: false })
  })

  it('A → B → A: judged from the newest time the held version was served', () => {
    // a(10) → b(4): 60%; b(4) → a(10); a(10) → c(6): 40%. A follower on a passed through neither
    // the first drop nor anything but the last step.
    const again: LineageStep[] = [{ h: 'a', n: 10, d: 6 }, { h: 'b', n: 4, d: 0 }, { h: 'a', n: 10, d: 4 }]
    expect(checkLineage(again, held('a', 10), 50)).toEqual({ ok: true, steps: 1 })
    expect(checkLineage(again, held('b', 4), 50)).toEqual({ ok: true, steps: 2 })
  })

  it('an operator\'s forced step passes any rule; the steps around it are still judged', () => {
    const forced: LineageStep[] = [{ h: 'a', n: 10, d: 8, f: true }, { h: 'b', n: 2, d: 0 }]
    expect(checkLineage(forced, held('a', 10), 10)).toMatchObject({ ok: true })
    const after: LineageStep[] = [{ h: 'a', n: 10, d: 8, f: true }, { h: 'b', n: 2, d: 1 }]
    expect(checkLineage(after, held('a', 10), 10)).toMatchObject({ ok: false })
  })

  it('steps that contradict each other (a next set smaller than what the step kept) are no history', () => {
    // a kept 9 of its 10 flags, so b cannot hold 2: a forged, inflated chain of small steps.
    const forged: LineageStep[] = [{ h: 'a', n: 10, d: 1 }, { h: 'b', n: 2, d: 1 }]
    expect(checkLineage(forged, held('a', 10), 50)).toEqual({ ok: false, message: expect.stringMatching(/contradicts/) })
  })

  it('a last step that kept more flags than the document holds is no history (counts that lie)', () => {
    // The document c holds 4 flags; a lineage that says a kept all its 10 (or 9) cannot lead to it.
    expect(checkLineage([{ h: 'a', n: 10, d: 0 }], held('a', 10), 50, { flagCount: 4 })).toEqual({ ok: false, message: expect.stringMatching(/contradicts/) })
    expect(checkLineage([{ h: 'a', n: 10, d: 1 }, { h: 'b', n: 9, d: 1 }], held('a', 10), 50, { flagCount: 4 })).toEqual({ ok: false, message: expect.stringMatching(/contradicts/) })
    // Honest counts still pass.
    expect(checkLineage(steps, held('a', 10), 50, { flagCount: 4 })).toEqual({ ok: true, steps: 2 })
  })

  it('fewer flags dropped along the lineage than the follower\'s flags missing from the document is no history (a skipped step, or every key renamed)', () => {
    // The follower's a (10 keys) shares none with the document (10 other keys): 10 of its flags
    // are gone, but the lineage says its steps dropped 1 in all.
    expect(checkLineage([{ h: 'a', n: 10, d: 1 }], held('a', 10), 50, { flagCount: 10, dropped: 10 })).toEqual({ ok: false, message: expect.stringMatching(/contradicts/) })
    // Every flag gone was dropped by some step: 4 + 2 ≥ 6.
    expect(checkLineage(steps, held('a', 10), 50, { flagCount: 4, dropped: 6 })).toEqual({ ok: true, steps: 2 })
    expect(checkLineage(steps, held('a', 10), 50, { flagCount: 4, dropped: 7 })).toMatchObject({ ok: false, message: expect.stringMatching(/contradicts/) })
  })

  it('a contradiction after a step past the rule is no history either (not the fleet\'s, to keep)', () => {
    // a(10) drops 6 (60%, past 50%), then b says it holds 2 although a kept 4: forged, not `descends`.
    const forged: LineageStep[] = [{ h: 'a', n: 10, d: 6 }, { h: 'b', n: 2, d: 0 }]
    expect(checkLineage(forged, held('a', 10), 50)).toEqual({ ok: false, message: expect.stringMatching(/contradicts/) })
    expect(checkLineage([{ h: 'a', n: 10, d: 6 }], held('a', 10), 50, { flagCount: 2 })).toEqual({ ok: false, message: expect.stringMatching(/contradicts/) })
  })

  it('--max-shrink 100 lets every step through; a NaN rule reads as the default 50%', () => {
    const big: LineageStep[] = [{ h: 'a', n: 10, d: 9 }]
    expect(checkLineage(big, held('a', 10), 100)).toMatchObject({ ok: true })
    expect(checkLineage(big, held('a', 10), Number.NaN)).toMatchObject({ ok: false, message: expect.stringMatching(/--max-shrink 50%/) })
  })
})
