// The guard every new flag set passes before it may replace what is served (CONTRACT §9): an
// upstream that answers zero flags, or suddenly far fewer, is far more likely broken (a truncated
// export, the wrong environment, a half-deployed ConfigMap) than telling the truth. Pure.
import { createHash } from 'node:crypto'

/** Default `--max-shrink`: a new flag set may drop at most 50% of the flags held. */
export const DEFAULT_MAX_SHRINK_PERCENT = 50

/** Why a flag set was refused by {@link checkShrink}. */
export type ShrinkVerdict =
  | { ok: true; dropped: number }
  | { ok: false; reason: 'empty'; message: string }
  | { ok: false; reason: 'shrink'; dropped: number; held: number; message: string }

/**
 * Whether `next` (the keys of a new flag set) may replace `held` (the keys served now). Refused:
 * an empty set (always, even when nothing is held: an empty document is never worth serving), and
 * a set that drops more than `maxShrinkPercent` percent of the held keys. Keys added do not offset
 * keys dropped: renaming every flag at once is refused too. `maxShrinkPercent` 100 turns the shrink
 * check off (the empty check stays); values outside 0–100 or NaN are clamped / read as the default.
 */
export function checkShrink(held: Iterable<string>, next: ReadonlySet<string> | ReadonlyMap<string, unknown> | readonly string[], maxShrinkPercent: number): ShrinkVerdict {
  const nextSet: { has(key: string): boolean; readonly size: number } = Array.isArray(next) ? new Set(next) : (next as ReadonlySet<string>)
  if (nextSet.size === 0) return { ok: false, reason: 'empty', message: 'the new flag set has no flags' }
  let heldCount = 0
  let dropped = 0
  for (const key of held) {
    heldCount++
    if (!nextSet.has(key)) dropped++
  }
  const limit = clampPercent(maxShrinkPercent)
  if (heldCount > 0 && dropped * 100 > heldCount * limit) {
    return {
      ok: false,
      reason: 'shrink',
      dropped,
      held: heldCount,
      message: `the new flag set drops ${dropped} of the ${heldCount} flags held (${Math.round((dropped * 100) / heldCount)}% > --max-shrink ${limit}%)`,
    }
  }
  return { ok: true, dropped }
}

/** Reads a `--max-shrink` value: a number from 0 to 100; anything else is the default. */
export function clampPercent(value: number): number {
  if (typeof value !== 'number' || Number.isNaN(value)) return DEFAULT_MAX_SHRINK_PERCENT
  return Math.min(100, Math.max(0, value))
}

/**
 * What an operator's `acceptShrink` on one relay names for the fleet (--redis): the flags the
 * accepted document keeps, as a hash of their sorted keys, not its bytes. An upstream that stamps
 * each answer (a generation time in `metadata`) gives every relay other bytes: named by the
 * follower's, the acceptance never matched the leader's fetch, and the fleet served two flag sets.
 * Undefined for text that is not a flagd document.
 */
export function shrinkAcceptance(text: string): string | undefined {
  let flags: unknown
  try {
    flags = (JSON.parse(text) as { flags?: unknown }).flags
  } catch {
    return undefined
  }
  if (flags === null || typeof flags !== 'object' || Array.isArray(flags)) return undefined
  return createHash('sha256').update(JSON.stringify(Object.keys(flags).sort())).digest('base64url').slice(0, 16)
}
