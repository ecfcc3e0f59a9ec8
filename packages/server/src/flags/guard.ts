import type { FlagDefinitionsVersion } from './flagSource'
import { checkShrink, clampPercent, DEFAULT_MAX_SHRINK_PERCENT } from './shrinkGuard'

export { DEFAULT_MAX_SHRINK_PERCENT }

/**
 * Why a new, valid generation must not replace the one in service, or undefined when it may
 * (last known good, server side): a document with zero flags while flags are held,
 * or one that drops more than `maxShrinkPercent` (default {@link DEFAULT_MAX_SHRINK_PERCENT}) of
 * the flags held. An outage that hands out `{"flags": {}}` must never look like "every kill switch
 * is off". The first generation has nothing to protect and is always accepted.
 */
export function refusalReason(
  previous: Pick<FlagDefinitionsVersion, 'flagCount' | 'evaluator'> | undefined,
  next: Pick<FlagDefinitionsVersion, 'flagCount' | 'evaluator'>,
  options: { maxShrinkPercent?: number } = {},
): string | undefined {
  if (!previous || previous.flagCount === 0) return undefined
  if (next.flagCount === 0) return `it defines no flags while ${previous.flagCount} are being served`
  // The one shrink rule (shrinkGuard.ts) the relay's per-context answers and snapshots obey too.
  const maxShrink = options.maxShrinkPercent ?? DEFAULT_MAX_SHRINK_PERCENT
  const verdict = checkShrink(previous.evaluator.getFlags().keys(), next.evaluator.getFlags(), maxShrink)
  if (verdict.ok || verdict.reason !== 'shrink') return undefined
  const { dropped, held } = verdict
  return `it drops ${dropped} of the ${held} flags being served (${Math.round((dropped * 100) / held)}%, more than the ${clampPercent(maxShrink)}% allowed)`
}

/** The keys added, removed or changed between two generations (by flagd-core's per-flag hash). */
export function changedKeys(previous: FlagDefinitionsVersion | undefined, next: FlagDefinitionsVersion): string[] {
  const before = previous?.evaluator.getFlags() ?? new Map()
  const after = next.evaluator.getFlags()
  const changed: string[] = []
  for (const [key, flag] of after) if (before.get(key)?.hash !== flag.hash) changed.push(key)
  for (const key of before.keys()) if (!after.has(key)) changed.push(key)
  return changed
}
