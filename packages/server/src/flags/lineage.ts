// --flags-url --redis: the recent steps that led to the definitions in the store, published with
// them, so that a follower that missed some (stopped, restarted from an old data dir) can tell a
// fleet that shrank in steps, each within --max-shrink, from an upstream that broke at once.
//
//   leader:   A(10 flags) ──40%──▶ B(6) ──33%──▶ C(4)      the store holds C, lineage [A→, B→]
//   follower: stopped holding A; restarted, it compares A with C: 60% dropped, refused for good.
//   now:      A is in C's lineage and every step from it is within the follower's own rule: taken.
//
// Pure; the store's copy is input like any other (another relay's bug, a hand edit): read with zod.
import { z } from 'zod'
import { clampPercent } from './shrinkGuard'

/** Most steps a lineage keeps (the oldest go first). */
export const MAX_LINEAGE_STEPS = 16

/**
 * One step the relays applied: from the definitions `h` (their version, the hash of their text),
 * holding `n` flags, to the next ones in the lineage (or the document itself, for the last step),
 * which dropped `d` of them. `f`: an operator forced it (`acceptShrink`).
 */
export interface LineageStep {
  h: string
  n: number
  d: number
  f?: true
}

// Bounds no relay's lineage comes near; past them it was not written by a relay and is ignored
// (the store's copy is then judged as one without a lineage: as before lineages existed).
const MAX_FLAGS = 10_000_000
const MAX_TEXT = MAX_LINEAGE_STEPS * 120

const stepSchema = z
  .object({
    h: z.string().min(1).max(64),
    n: z.number().int().min(1).max(MAX_FLAGS),
    d: z.number().int().min(0).max(MAX_FLAGS),
    f: z.literal(true).optional(),
  })
  .refine((step) => step.d <= step.n)

/** A lineage as the data dir and the store keep it. */
export const lineageSchema = z.array(stepSchema).max(MAX_LINEAGE_STEPS)

/** A lineage read from the store's text; undefined when there is none or it is not one a relay writes. */
export function readLineage(text: string | undefined): LineageStep[] | undefined {
  if (text === undefined || text === '' || text.length > MAX_TEXT) return undefined
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return undefined
  }
  const parsed = lineageSchema.safeParse(json)
  return parsed.success ? (parsed.data as LineageStep[]) : undefined
}

/** The lineage of definitions that replaced `from` (which had `lineage`), dropping `dropped` of its flags. */
export function extendLineage(lineage: readonly LineageStep[], from: { version: string; flagCount: number }, dropped: number, forced: boolean): LineageStep[] {
  const step: LineageStep = { h: from.version, n: from.flagCount, d: dropped }
  if (forced) step.f = true
  return [...lineage, step].slice(-MAX_LINEAGE_STEPS)
}

/** What {@link checkLineage} found. */
export type LineageVerdict = { ok: true; steps: number } | { ok: false; message: string; descends?: true }

/**
 * Whether the definitions `held` (served here) lead, through `lineage`, to the document it came
 * with, every step within `maxShrinkPercent` (or forced by an operator on the relay that applied
 * it: see docs/redis.md). `held` is looked for from the newest step back (a version may come back:
 * A → B → A), by its hash and its flag count. Refused: no lineage, `held` not in it (too old, or
 * another history), a step past the rule (`descends`: the copy is the fleet's history, which only
 * this relay's rule refuses), or steps that contradict each other or `to`, the document the lineage
 * came with (its last step kept more flags than it holds, or its steps dropped fewer than the
 * `dropped` flags of `held` it lacks: every flag gone was dropped by some step). Contradictions are
 * looked for first: a forged lineage is no history, past the rule or not.
 */
export function checkLineage(lineage: readonly LineageStep[] | undefined, held: { version: string; flagCount: number }, maxShrinkPercent: number, to?: { flagCount: number; dropped?: number }): LineageVerdict {
  if (!lineage || lineage.length === 0) return { ok: false, message: 'the store\'s copy has no lineage (written by an older relay, or the first flags its leader served)' }
  let from = -1
  for (let i = lineage.length - 1; i >= 0; i--) {
    if (lineage[i].h === held.version && lineage[i].n === held.flagCount) {
      from = i
      break
    }
  }
  if (from < 0) return { ok: false, message: `the store's lineage does not reach back to the flags served here (version ${held.version}; it holds the last ${lineage.length} steps)` }
  // The flags a step kept are all in the next set (the next step's, or the document's for the
  // last one): a next set smaller than that is no history.
  let dropped = 0
  for (let i = from; i < lineage.length; i++) {
    const next = i + 1 < lineage.length ? lineage[i + 1].n : to?.flagCount
    if (next !== undefined && next < lineage[i].n - lineage[i].d) return { ok: false, message: 'the store\'s lineage contradicts itself' }
    dropped += lineage[i].d
  }
  if (to?.dropped !== undefined && to.dropped > dropped) return { ok: false, message: `the store's lineage contradicts itself (its steps dropped ${dropped} flags; ${to.dropped} of those served here are gone)` }
  const limit = clampPercent(maxShrinkPercent)
  for (let i = from; i < lineage.length; i++) {
    const step = lineage[i]
    if (!step.f && step.d * 100 > step.n * limit) {
      // The copy descends from what is served here, through steps a relay of the fleet applied:
      // refused by this relay's stricter rule, but no junk to write over (`descends`).
      return { ok: false, descends: true, message: `a step in the store's lineage (from version ${step.h}) drops ${step.d} of ${step.n} flags (${Math.round((step.d * 100) / step.n)}% > --max-shrink ${limit}% here)` }
    }
  }
  return { ok: true, steps: lineage.length - from }
}
